"""The auth database: SQLite in the data folder (embedded) or PostgreSQL (replicas)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from gatehouse.common.errors import ConfigurationError

DATABASE_SCHEMES = ("postgresql", "postgresql+asyncpg", "postgres", "sqlite", "sqlite+aiosqlite")
_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def normalize_database_url(url: str) -> str:
    """``postgresql://`` -> ``postgresql+asyncpg://``, ``sqlite://`` -> ``sqlite+aiosqlite://``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _DRIVERS:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{_DRIVERS[scheme]}://{rest}"


class _NoKeyMaterial(logging.Filter):
    """aiosqlite logs every call with its parameters at DEBUG: keep the signing key out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PRIVATE KEY" not in record.getMessage()


_AIOSQLITE_FILTER = _NoKeyMaterial()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL and a busy timeout, its folder is created.

    Statement parameters (a private key, token digests) are kept out of logs and errors.
    """
    url = normalize_database_url(url)
    parsed = make_url(url)
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() != "sqlite":
        return _create_async_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.getLogger("aiosqlite").addFilter(_AIOSQLITE_FILTER)  # a no-op when already there
    engine = _create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Writers of several connections wait for each other instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


async def ping(engine: AsyncEngine, within: float = 2.0) -> None:
    """Raise if the database does not answer ``SELECT 1`` within ``within`` seconds."""
    async with asyncio.timeout(within), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def check_reachable(engine: AsyncEngine, setting: str) -> None:
    """Fail start-up with an error naming ``setting`` (password hidden) when unreachable."""
    try:
        await ping(engine, within=10.0)
    except Exception as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigurationError(setting, f"cannot reach the database {where}: {exc!r}") from exc
