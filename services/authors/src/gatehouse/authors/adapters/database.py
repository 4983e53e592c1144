"""Engines for SQLite (embedded) and PostgreSQL (split mode); sessions of the unit of work.

On SQLite a writing unit of work begins with ``BEGIN IMMEDIATE``: it takes the
write lock before its first read, so two writers queue (busy timeout) instead of
the second failing with "database is locked" when it upgrades a stale read
snapshot. That is what makes version checks and idempotency keys behave on
SQLite as on PostgreSQL.

On PostgreSQL the pool is sized by the settings (:class:`~gatehouse.authors.settings.Pool`)
and a connection is pinged only when it comes out of the pool after ``ping_idle``
seconds unused: SQLAlchemy's pre-ping costs three round trips (BEGIN, ``;``, ROLLBACK)
on every checkout, as many as a create's own statements. A busy pool has no idle
connection to doubt; one that sat unused (a database restart is noticed then) is
pinged, and a failed ping discards every connection pooled before it, as pre-ping does.
A connection that breaks in use is a 503 (``is_outage``) and is discarded likewise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse.common.sql import check_reachable as _check_reachable
from gatehouse.common.sql import create_engine as _create_engine
from gatehouse.common.sql import is_postgres, normalize_database_url, ping

WRITE = "gatehouse_write"
# Bounded waits: a database that hangs becomes a 503 within seconds, not a hung request.
POSTGRES_CONNECT_ARGS = {"timeout": 3, "command_timeout": 15}
_IDLE_SINCE = "gatehouse_idle_since"


@dataclass(frozen=True, slots=True)
class Pool:
    """Connections kept (``size``), opened beyond them under load (``overflow``), replaced
    once older than ``recycle`` seconds (0: never), and pinged when taken from the pool
    after ``ping_idle`` seconds unused (0: every time)."""

    size: int = 20
    overflow: int = 10
    recycle: float = 1800
    ping_idle: float = 1.0


def create_engine(url: str, pool: Pool | None = None, **kwargs: Any) -> AsyncEngine:
    """An engine for ``url``; on PostgreSQL with ``pool`` (default: the settings' defaults)."""
    if normalize_database_url(url).startswith("postgresql"):
        pool = pool or Pool()
        kwargs.setdefault("connect_args", POSTGRES_CONNECT_ARGS)
        kwargs.setdefault("pool_timeout", 5)
        kwargs.setdefault("pool_size", pool.size)
        kwargs.setdefault("max_overflow", pool.overflow)
        kwargs.setdefault("pool_recycle", pool.recycle or -1)
        engine = _create_engine(url, pool_pre_ping=False, **kwargs)
        _ping_when_idle(engine, pool.ping_idle)
        return engine
    engine = _create_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _own_transactions)
    event.listen(engine.sync_engine, "begin", _begin)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    sync = engine.sync_engine
    dialect = sync.dialect

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:  # None once the connection was detached or discarded
            record.info[_IDLE_SINCE] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)  # None: opened just now
        if since is None or time.monotonic() - since < idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and every one pooled before now, then
            # opens a new one (or fails with the reason it cannot: a 503).
            raise InvalidatePoolError(f"ping of an idle connection failed: {exc!r}") from exc

    event.listen(sync.pool, "checkin", checkin)
    event.listen(sync.pool, "checkout", checkout)


def _own_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's implicit BEGIN off: see _begin


def _begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading units of work. On PostgreSQL each statement runs in autocommit:
    no BEGIN and ROLLBACK round trips around a read. Under READ COMMITTED every statement
    took its own snapshot inside the transaction as well, so a list and its count agree
    no less than before; a read unit never writes."""
    if is_postgres(engine):
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(engine, expire_on_commit=False)


def write_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for writing units of work (``BEGIN IMMEDIATE`` on SQLite)."""
    return async_sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False)


async def check_reachable(engine: AsyncEngine, setting: str = "DATABASE_URL") -> None:
    """Fail start-up with an error naming ``setting`` when unreachable."""
    await _check_reachable(engine, setting)


__all__ = [
    "Pool",
    "check_reachable",
    "create_engine",
    "is_postgres",
    "normalize_database_url",
    "ping",
    "read_session_factory",
    "session_factory",
    "write_session_factory",
]
