"""Alembic migrations of the auth database, shipped inside the package.

The auth service migrates its own small schema when it starts (``create_app``'s
lifespan calls :func:`migrate`), so ``gatehouse run auth`` needs no separate step.
On PostgreSQL replicas starting together take turns under a transaction-scoped
advisory lock (on SQLite: under the database's write lock), and the second finds
the schema already at head. This is fine for
a schema this small; a larger one would migrate in a Job before the rollout, as
the authors service does.

No ``alembic.ini`` is needed: :func:`alembic_config` builds it in code. Developers
can run the Alembic CLI with ``alembic -x url=<GATEHOUSE_AUTH_DATABASE_URL> -c /dev/null
...`` pointed at this folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.tables import VERSION_TABLE

HERE = Path(__file__).parent
# pg_advisory_xact_lock key ("GHAUTHMG"), distinct from the authors service's.
MIGRATION_LOCK_KEY = 0x474841555448_4D47


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the auth database of ``engine`` to the newest schema (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    else:
        # The sqlite3 driver runs DDL outside any transaction; take the write lock
        # first so that processes sharing a data folder migrate one after the other.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    command.upgrade(alembic_config(connection), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    opts = {"version_table": VERSION_TABLE}
    return MigrationContext.configure(connection, opts=opts).get_current_revision()


__all__ = ["current_revision", "head_revision", "migrate"]
