"""Async engines for SQLite (embedded) and PostgreSQL (split mode), and their health."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from gatehouse.common.datadir import private_file
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.health import Check, CheckFn

log = logging.getLogger("gatehouse.sql")

DATABASE_SCHEMES = ("postgresql", "postgresql+asyncpg", "postgres", "sqlite", "sqlite+aiosqlite")
_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def normalize_database_url(url: str) -> str:
    """``postgresql://`` -> ``postgresql+asyncpg://``, ``sqlite://`` -> ``sqlite+aiosqlite://``.

    Raises ``ValueError`` for any scheme outside :data:`DATABASE_SCHEMES`.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _DRIVERS:
        raise ValueError(f"unsupported database URL scheme {scheme!r}")
    return f"{_DRIVERS[scheme]}://{rest}"


def is_sqlite_url(url: str) -> bool:
    """Whether ``url`` (any supported scheme) names a SQLite database."""
    return make_url(normalize_database_url(url)).get_backend_name() == "sqlite"


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def create_engine(
    url: str, *, setting: str = "DATABASE_URL", folder_mode: int | None = None, **kwargs: Any
) -> AsyncEngine:
    """An async engine for ``url``; ``kwargs`` go to SQLAlchemy's ``create_async_engine``.

    PostgreSQL connections are pre-pinged unless ``pool_pre_ping=False`` is given.
    SQLite gets WAL, foreign keys and a busy timeout; its file is created 0600 in its
    folder, created 0700 when missing (never the folder's parents: a ConfigurationError
    names ``setting`` instead).
    ``folder_mode`` is ignored (kept for callers of the earlier signature).
    """
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return _create_async_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        private_file(Path(parsed.database), setting)  # SQLite's -wal and -shm take its mode
    engine = _create_async_engine(url, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # Writers of several connections wait for each other instead of failing at once.
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode")
    mode = cursor.fetchone()
    if mode is None or str(mode[0]).lower() != "wal":  # WAL is kept in the file: once is enough
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            # Switching needs the file to itself; SQLite refuses at once, without waiting,
            # while another connection is inside a transaction (several replicas starting
            # on a new file). That connection's switch, or the next start, does it.
            log.info("SQLite stays in its journal mode for now: %s", exc)
    cursor.close()


async def ping(engine: AsyncEngine, within: float = 2.0) -> None:
    """Raise if the database does not answer ``SELECT 1`` within ``within`` seconds."""
    async with asyncio.timeout(within), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def database_check(engine: AsyncEngine) -> CheckFn:
    """The readiness check ``database``: it answers ``SELECT 1``."""

    async def check() -> Check:
        try:
            await ping(engine)
        except Exception as exc:
            return Check(False, f"no answer from {_where(engine)} ({type(exc).__name__})")
        return Check(True)

    return check


def _where(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=True)


async def check_reachable(engine: AsyncEngine, setting: str) -> None:
    """Fail start-up with a :class:`ConfigurationError` naming ``setting`` when unreachable.

    The message shows the URL with its password hidden.
    """
    try:
        await ping(engine, within=10.0)
    except Exception as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise ConfigurationError(setting, f"cannot reach the database {where}: {exc!r}") from exc
