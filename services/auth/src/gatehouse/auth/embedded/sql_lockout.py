"""The SQL adapter of the failed-login counters: one table in the auth database, which
every replica shares, so N replicas allow no more guesses than one.

``swap`` is a compare-and-set over the counters of one attempt in one transaction: an
``UPDATE ... WHERE failures = :seen AND last_at = :seen`` per existing counter (zero
rows: someone counted first) and an ``INSERT`` per new one (a duplicate key: someone
created it first). Either way the transaction is rolled back and the throttle reads
again. PostgreSQL re-checks the WHERE after waiting for a concurrent writer's row lock;
SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.embedded.lockout import Failures, FailureStore
from gatehouse.auth.tables import login_failures

_T = login_failures.c


class _Changed(Exception):
    """A counter moved since it was read."""


class SqlFailureStore(FailureStore):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, keys: Sequence[str]) -> dict[str, Failures]:
        query = sa.select(_T.key, _T.failures, _T.last_at).where(_T.key.in_(keys))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.key: Failures(row.failures, row.last_at) for row in rows}

    async def swap(self, changes: Mapping[str, tuple[Failures | None, Failures]]) -> bool:
        try:
            async with self._engine.begin() as conn:
                for key, (seen, new) in changes.items():
                    await _set(conn, key, seen, new)
        except (_Changed, sa.exc.IntegrityError):
            return False
        return True

    async def forget(self, keys: Sequence[str]) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(login_failures.delete().where(_T.key.in_(keys)))

    async def prune(self, before: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(login_failures.delete().where(_T.last_at < before))


async def _set(conn: AsyncConnection, key: str, seen: Failures | None, new: Failures) -> None:
    values = {"failures": new.count, "last_at": new.last}
    if seen is None:
        await conn.execute(login_failures.insert().values(key=key, **values))
        return
    moved = await conn.execute(
        login_failures.update()
        .where(_T.key == key, _T.failures == seen.count, _T.last_at == seen.last)
        .values(**values)
    )
    if moved.rowcount != 1:
        raise _Changed
