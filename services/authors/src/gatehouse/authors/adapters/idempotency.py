"""Stored results of writes made with an ``Idempotency-Key``, per user, for a while.

The key's row is inserted first in the write's own transaction and filled with the
result before commit, so a row that others can see is always complete. A
concurrent duplicate's INSERT waits on the unique index until the first
transaction ends (PostgreSQL; SQLite writers are serialised anyway), then finds
the committed row and replays it; if the first rolled back, it runs itself.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.authors.adapters import orm


@dataclass(frozen=True, slots=True)
class Stored:
    """A finished write: the fingerprint of its request and its result."""

    fingerprint: str
    result: Any


class AbstractIdempotencyStore(abc.ABC):
    @abc.abstractmethod
    async def claim(
        self, subject: str, key: str, fingerprint: str, ttl: timedelta
    ) -> Stored | None:
        """``None``: the key is this transaction's now; else the earlier write's record."""

    @abc.abstractmethod
    async def complete(self, subject: str, key: str, result: Any) -> None:
        """Record the result of the claimed key (same transaction as the write)."""

    @abc.abstractmethod
    async def purge(self, now: datetime) -> int:
        """Forget every key that expired before ``now``; how many."""


class SqlAlchemyIdempotencyStore(AbstractIdempotencyStore):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, subject: str, key: str, fingerprint: str, ttl: timedelta
    ) -> Stored | None:
        table = orm.idempotency_keys
        now = datetime.now(UTC)
        mine = (table.c.subject == subject) & (table.c.key == key)
        await self.session.execute(delete(table).where(mine, table.c.expires_at < now))
        bind = self.session.get_bind()
        dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
        claimed = await self.session.execute(
            dialect.insert(table)
            .values(
                subject=subject,
                key=key,
                fingerprint=fingerprint,
                created_at=now,
                expires_at=now + ttl,
            )
            .on_conflict_do_nothing()
        )
        if getattr(claimed, "rowcount", 0) == 1:
            return None
        row = (await self.session.execute(select(table).where(mine))).one()
        return Stored(row.fingerprint, row.result)

    async def complete(self, subject: str, key: str, result: Any) -> None:
        table = orm.idempotency_keys
        mine = (table.c.subject == subject) & (table.c.key == key)
        await self.session.execute(update(table).where(mine).values(result=result))

    async def purge(self, now: datetime) -> int:
        table = orm.idempotency_keys
        done = await self.session.execute(delete(table).where(table.c.expires_at < now))
        return int(getattr(done, "rowcount", 0) or 0)
