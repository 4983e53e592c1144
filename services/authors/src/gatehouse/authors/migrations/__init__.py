"""Alembic migrations of the authors database, shipped inside the package.

No ``alembic.ini`` is needed (:class:`gatehouse.common.sql.MigrationScripts` builds
the configuration in code). Developers can still run the Alembic CLI with
``alembic -x url=<DATABASE_URL> -c /dev/null ...`` pointed at this folder.
"""

from __future__ import annotations

from pathlib import Path

from gatehouse.authors.adapters.database import create_engine
from gatehouse.common.sql import MigrationScripts

SCRIPTS = MigrationScripts(
    location=Path(__file__).parent,
    # pg_advisory_xact_lock key, so that replicas starting together migrate one at a time.
    lock_key=0x4748414D49475241,
    setting="DATABASE_URL",
    service="authors",
)


async def migrate(database_url: str) -> None:
    """Upgrade the database at ``database_url`` to the newest schema (async; idempotent)."""
    engine = create_engine(database_url)
    try:
        await SCRIPTS.migrate(engine)
    finally:
        await engine.dispose()


head_revision = SCRIPTS.head_revision
current_revision = SCRIPTS.current_revision

__all__ = ["current_revision", "head_revision", "migrate"]
