"""Alembic migrations of the authors database, shipped inside the package.

No ``alembic.ini`` is needed: :func:`migrate` builds the configuration in code.
Developers can still run the Alembic CLI with
``alembic -x url=<DATABASE_URL> -c /dev/null ...`` pointed at this folder.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from gatehouse.authors.adapters.database import create_engine

HERE = Path(__file__).parent
# pg_advisory_xact_lock key, so that replicas starting together migrate one at a time.
MIGRATION_LOCK_KEY = 0x4748414D49475241


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


async def migrate(database_url: str) -> None:
    """Upgrade the database at ``database_url`` to the newest schema (async; idempotent)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


__all__ = ["current_revision", "head_revision", "migrate"]
