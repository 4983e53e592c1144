"""Engines for SQLite (embedded) and PostgreSQL (split mode); sessions of the unit of work.

On SQLite a writing unit of work begins with ``BEGIN IMMEDIATE``: it takes the
write lock before its first read, so two writers queue (busy timeout) instead of
the second failing with "database is locked" when it upgrades a stale read
snapshot. That is what makes version checks and idempotency keys behave on
SQLite as on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse.common.sql import check_reachable as _check_reachable
from gatehouse.common.sql import create_engine as _create_engine
from gatehouse.common.sql import is_postgres, normalize_database_url, ping

WRITE = "gatehouse_write"
# Bounded waits: a database that hangs becomes a 503 within seconds, not a hung request.
POSTGRES_CONNECT_ARGS = {"timeout": 3, "command_timeout": 15}


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if normalize_database_url(url).startswith("postgresql"):
        kwargs.setdefault("connect_args", POSTGRES_CONNECT_ARGS)
        kwargs.setdefault("pool_timeout", 5)
        return _create_engine(url, **kwargs)
    engine = _create_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _own_transactions)
    event.listen(engine.sync_engine, "begin", _begin)
    return engine


def _own_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's implicit BEGIN off: see _begin


def _begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def write_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for writing units of work (``BEGIN IMMEDIATE`` on SQLite)."""
    return async_sessionmaker(engine.execution_options(**{WRITE: True}), expire_on_commit=False)


async def check_reachable(engine: AsyncEngine, setting: str = "DATABASE_URL") -> None:
    """Fail start-up with an error naming ``setting`` when unreachable."""
    await _check_reachable(engine, setting)


__all__ = [
    "check_reachable",
    "create_engine",
    "is_postgres",
    "normalize_database_url",
    "ping",
    "session_factory",
    "write_session_factory",
]
