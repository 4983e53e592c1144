"""The SQL adapter of the session store: sessions shared by every replica of one database.

Rotation is a compare-and-set: ``UPDATE ... WHERE id = :sid AND token_digest = :old``
moves the session to its new token only if nobody did it first. PostgreSQL's row
lock (READ COMMITTED re-checks the WHERE after waiting) and SQLite's single writer
make the loser see zero rows; it then finds its token retired, with the winner's sealed
answer beside it: within the grace window it answers that (the same new tokens), after
it the session is revoked, exactly as if the two refreshes had come one after the other.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.database import ping
from gatehouse.auth.embedded.revocations import SESSION, RevocationLog
from gatehouse.auth.embedded.sessions import (
    Clock,
    RefreshOutcome,
    Retired,
    Rotation,
    Sealer,
    Session,
    SessionStore,
    digest,
)
from gatehouse.auth.tables import retired_tokens, sessions

PRUNE_EVERY = 60.0


class SqlSessionStore(SessionStore):
    """Sessions in the auth database (SQLite or PostgreSQL); only token digests are stored."""

    def __init__(
        self,
        engine: AsyncEngine,
        idle_ttl: float,
        max_ttl: float,
        clock: Clock = time.time,
        *,
        revocations: RevocationLog | None = None,
        grace: float = 0.0,
    ) -> None:
        self._engine = engine
        # A revoked session's item for the gateway, written with the revocation itself.
        self._revocations = revocations
        self._idle = idle_ttl
        self._max = max_ttl
        self._clock = clock
        self._grace = grace
        self._next_prune = 0.0

    async def start(self, username: str, client_id: str, scope: str) -> tuple[Session, str]:
        now = self._clock()
        await self._prune(now)
        session = Session(
            secrets.token_hex(16),
            username,
            client_id,
            scope,
            now,
            now + self._idle,
            now + self._max,
        )
        token = secrets.token_urlsafe(32)
        session.token_digest = digest(token)
        async with self._engine.begin() as conn:
            await conn.execute(sessions.insert().values(**_row(session)))
        return session, token

    async def rotate(self, token: str, client_id: str, seal: Sealer | None = None) -> Rotation:
        return await self._rotate(token, client_id, seal, first_try=True)

    async def find_active(self, token: str) -> Session | None:
        session = await self._one(sessions.c.token_digest == digest(token))
        return session if session and session.active(self._clock()) else None

    async def get_active(self, session_id: str) -> Session | None:
        session = await self._one(sessions.c.id == session_id)
        return session if session and session.active(self._clock()) else None

    async def revoke(self, session: Session) -> None:
        session.revoked = True
        async with self._engine.begin() as conn:
            revoked = await conn.execute(
                sessions.update()
                .where(sessions.c.id == session.id, sessions.c.revoked.is_(False))
                .values(revoked=True)
            )
            if self._revocations is not None and revoked.rowcount == 1:
                await self._revocations.record(conn, SESSION, session.id)

    async def ready(self) -> bool:
        try:
            await ping(self._engine)
        except Exception:
            return False
        return True

    async def _rotate(
        self, token: str, client_id: str, seal: Sealer | None, *, first_try: bool
    ) -> Rotation:
        old = digest(token)
        session = await self._one(sessions.c.token_digest == old)
        if session is None:
            return await self._retired(old, client_id)
        if session.client_id != client_id:
            return Rotation(RefreshOutcome.UNKNOWN)
        now = self._clock()
        if not session.active(now):
            return Rotation(RefreshOutcome.EXPIRED, session)
        new = secrets.token_urlsafe(32)
        session.expires_at = now + self._idle
        sealed = await seal(session, new) if seal else b""
        if await self._swap(session, old, Retired(now, digest(new), sealed)):
            return Rotation(RefreshOutcome.ROTATED, session, new, sealed)
        if first_try:  # someone else moved or revoked the session meanwhile: look again
            return await self._rotate(token, client_id, seal, first_try=False)
        return Rotation(RefreshOutcome.EXPIRED, session)

    async def _swap(self, session: Session, old: str, retired: Retired) -> bool:
        """Compare-and-set the session's token; retire the old digest, with the sealed
        answer for a retry, in the same transaction."""
        moved = (
            sessions.update()
            .where(
                sessions.c.id == session.id,
                sessions.c.token_digest == old,
                sessions.c.revoked.is_(False),
            )
            .values(token_digest=retired.successor, expires_at=session.expires_at)
        )
        row = {
            "digest": old,
            "session_id": session.id,
            "retired_at": retired.at,
            "successor": retired.successor,
            "sealed": retired.sealed or None,
        }
        async with self._engine.begin() as conn:
            if (await conn.execute(moved)).rowcount != 1:
                return False
            await conn.execute(retired_tokens.insert().values(**row))
        session.token_digest = retired.successor
        return True

    async def _retired(self, old: str, client_id: str) -> Rotation:
        extra = (retired_tokens.c.retired_at, retired_tokens.c.successor, retired_tokens.c.sealed)
        query = (
            sa.select(*sessions.c, *extra)
            .join(retired_tokens, retired_tokens.c.session_id == sessions.c.id)
            .where(retired_tokens.c.digest == old)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        session = _session(row) if row else None
        if row is None or session is None or session.client_id != client_id:
            return Rotation(RefreshOutcome.UNKNOWN)
        retired = Retired(row["retired_at"] or 0.0, row["successor"] or "", row["sealed"] or b"")
        if retired.retry_allowed(session, self._clock(), self._grace):
            return Rotation(RefreshOutcome.GRACE, session, sealed=retired.sealed)
        await self.revoke(session)
        return Rotation(RefreshOutcome.REUSED, session)

    async def _one(self, where: sa.ColumnElement[bool]) -> Session | None:
        return await self._first(sa.select(sessions).where(where))

    async def _first(self, query: sa.Select[Any]) -> Session | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _session(row) if row else None

    async def _prune(self, now: float) -> None:
        # Dead sessions are kept for one idle period so that late reuse is still seen;
        # their retired digests go with them (ON DELETE CASCADE).
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        cutoff = now - self._idle
        dead = sa.or_(
            sessions.c.revoked.is_(True),
            sessions.c.expires_at <= cutoff,
            sessions.c.ends_at <= cutoff,
        )
        async with self._engine.begin() as conn:
            await conn.execute(sessions.delete().where(dead))


def _row(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "username": session.username,
        "client_id": session.client_id,
        "scope": session.scope,
        "started_at": session.started_at,
        "expires_at": session.expires_at,
        "ends_at": session.ends_at,
        "token_digest": session.token_digest,
        "revoked": session.revoked,
    }


def _session(row: Any) -> Session:
    return Session(
        id=row["id"],
        username=row["username"],
        client_id=row["client_id"],
        scope=row["scope"],
        started_at=row["started_at"],
        expires_at=row["expires_at"],
        ends_at=row["ends_at"],
        token_digest=row["token_digest"],
        revoked=row["revoked"],
    )
