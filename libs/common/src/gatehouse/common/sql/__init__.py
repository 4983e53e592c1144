"""SQL plumbing shared by the services that own a database (``gatehouse-common[sql]``).

Engines, URL normalisation and reachability (:mod:`.database`), and running one
service's Alembic scripts to head (:mod:`.migrations`). Each service keeps its own
tables, ORM mapping and migration scripts; only the plumbing lives here. Import it
only from a service that has a database: it imports SQLAlchemy and Alembic, which
the gateway and the realtime service do not install.
"""

from gatehouse.common.sql.database import (
    DATABASE_SCHEMES,
    check_reachable,
    create_engine,
    database_check,
    is_postgres,
    is_sqlite_url,
    normalize_database_url,
    ping,
)
from gatehouse.common.sql.migrations import MigrationScripts, run_environment

__all__ = [
    "DATABASE_SCHEMES",
    "MigrationScripts",
    "check_reachable",
    "create_engine",
    "database_check",
    "is_postgres",
    "is_sqlite_url",
    "normalize_database_url",
    "ping",
    "run_environment",
]
