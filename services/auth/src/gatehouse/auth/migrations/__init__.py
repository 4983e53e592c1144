"""Alembic migrations of the auth database, shipped inside the package.

In the embedded profile the auth service migrates its own small schema when it
starts (``create_app``'s lifespan calls :func:`migrate`). In production it never
does: ``gatehouse migrate auth`` (a Job) upgrades the database, and the service
refuses to start, naming the command, while the schema is behind.
On PostgreSQL replicas starting together take turns under a transaction-scoped
advisory lock (on SQLite: under the database's write lock), and the second finds
the schema already at head. This is fine for
a schema this small; a larger one would migrate in a Job before the rollout, as
the authors service does.

No ``alembic.ini`` is needed (:class:`gatehouse.common.sql.MigrationScripts` builds
it in code). Developers can run the Alembic CLI with
``alembic -x url=<GATEHOUSE_AUTH_DATABASE_URL> -c /dev/null ...`` pointed at this folder.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.tables import VERSION_TABLE
from gatehouse.common.sql import MigrationScripts

SCRIPTS = MigrationScripts(
    location=Path(__file__).parent,
    # pg_advisory_xact_lock key ("GHAUTHMG"), distinct from the authors service's.
    lock_key=0x474841555448_4D47,
    setting="GATEHOUSE_AUTH_DATABASE_URL",
    version_table=VERSION_TABLE,
    sqlite_write_lock=True,
    service="auth",
)


async def migrate(engine: AsyncEngine) -> None:
    """Upgrade the auth database of ``engine`` to the newest schema (idempotent)."""
    await SCRIPTS.migrate(engine)


head_revision = SCRIPTS.head_revision
current_revision = SCRIPTS.current_revision

__all__ = ["current_revision", "head_revision", "migrate"]
