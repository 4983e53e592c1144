"""The auth database: SQLite in the data folder (embedded) or PostgreSQL (replicas)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.common import sql
from gatehouse.common.sql import DATABASE_SCHEMES, check_reachable, normalize_database_url, ping


class _NoKeyMaterial(logging.Filter):
    """aiosqlite logs every call with its parameters at DEBUG: keep the signing key out."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PRIVATE KEY" not in record.getMessage()


_AIOSQLITE_FILTER = _NoKeyMaterial()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL and a busy timeout, its folder is created.

    Statement parameters (a private key, token digests) are kept out of logs and errors,
    and the SQLite folder is private to the service's user.
    """
    kwargs.setdefault("hide_parameters", True)
    if sql.is_sqlite_url(url):
        logging.getLogger("aiosqlite").addFilter(_AIOSQLITE_FILTER)  # a no-op when already there
    return sql.create_engine(url, folder_mode=0o700, **kwargs)


__all__ = ["DATABASE_SCHEMES", "check_reachable", "create_engine", "normalize_database_url", "ping"]
