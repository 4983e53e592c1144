"""Engines for SQLite (embedded) and PostgreSQL (split mode); sessions of the unit of work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse.common.sql import check_reachable as _check_reachable
from gatehouse.common.sql import create_engine, is_postgres, normalize_database_url, ping


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
]
