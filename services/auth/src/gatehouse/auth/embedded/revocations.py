"""Revocation items: what the gateway must refuse before it expires (``/internal/revocations``).

A logged-out session, a session revoked because a refresh token was reused, and a
disabled user each write an item, in the same transaction as the change itself. An
item lives until the last access token it covers has expired: the newest such token
was signed no later than the revocation, so ``expires_at = revoked_at + access TTL +
the verifiers' leeway``. Refresh tokens need no item: only this service accepts them,
and it reads the session.

The cursor is a time, not an id. Ids are allocated before commit, so "id > last seen"
would skip an item whose transaction commits late (the BIGSERIAL trap of the authors
outbox). A page holds the items stamped at or after ``after``, and the cursor it hands
back stays ``OVERLAP`` seconds behind the answering replica's clock, so an item that
committed late, or was stamped by a replica whose clock lags, is sent again rather
than missed. Readers apply items idempotently (the gateway does).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.tables import revocations

Kind = Literal["session", "subject"]
SESSION: Kind = "session"
SUBJECT: Kind = "subject"
# Verifiers accept a token this long past its exp (gatehouse.common.tokens' default).
LEEWAY = 30.0
OVERLAP = 30.0
PAGE_SIZE = 1000
PRUNE_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Revocation:
    kind: Kind
    id: str
    revoked_at: float
    expires_at: float

    def item(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "revoked_at": self.revoked_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Revocation]
    cursor: str


def parse_cursor(value: str) -> float:
    """A cursor this module handed out; ``ValueError`` for anything else."""
    if len(value) > 32:
        raise ValueError("cursor too long")
    cursor = float(value)
    if not math.isfinite(cursor) or cursor < 0:
        raise ValueError("cursor out of range")
    return cursor


def _cursor(at: float) -> str:
    return f"{max(at, 0.0):.6f}"


class RevocationLog:
    """The items in the auth database, shared by every replica."""

    def __init__(
        self,
        engine: AsyncEngine,
        access_ttl: float,
        *,
        clock: Callable[[], float] = time.time,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._engine = engine
        self._lifetime = access_ttl + LEEWAY
        self._clock = clock
        self._page_size = page_size
        self._next_prune = 0.0

    async def record(self, conn: AsyncConnection, kind: Kind, ident: str) -> Revocation:
        """Write an item in the caller's transaction (it commits with the change)."""
        now = self._clock()
        revocation = Revocation(kind, ident, now, now + self._lifetime)
        await conn.execute(
            revocations.insert().values(
                kind=kind, ident=ident, revoked_at=now, expires_at=revocation.expires_at
            )
        )
        return revocation

    async def add(self, kind: Kind, ident: str) -> Revocation:
        """Write an item in a transaction of its own."""
        async with self._engine.begin() as conn:
            return await self.record(conn, kind, ident)

    async def since(self, cursor: str | None) -> Page:
        """Unexpired items stamped at or after ``cursor`` (all of them without one)."""
        start = parse_cursor(cursor) if cursor else 0.0
        now = self._clock()
        await self._prune(now)
        query = (
            sa.select(revocations)
            .where(revocations.c.revoked_at >= start, revocations.c.expires_at > now)
            .order_by(revocations.c.revoked_at, revocations.c.id)
            .limit(self._page_size)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        items = [Revocation(r["kind"], r["ident"], r["revoked_at"], r["expires_at"]) for r in rows]
        if len(items) == self._page_size:  # more to come: go on from the last one
            return Page(items, _cursor(items[-1].revoked_at))
        return Page(items, _cursor(max(start, now - OVERLAP)))

    async def _prune(self, now: float) -> None:
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        async with self._engine.begin() as conn:
            await conn.execute(revocations.delete().where(revocations.c.expires_at <= now))
