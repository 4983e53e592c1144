"""The Alembic environment of the test scripts: what a service's env.py looks like."""

from pathlib import Path

from sqlalchemy import MetaData

from gatehouse.common.sql import MigrationScripts, run_environment

# The same scripts as test_migrations.SCRIPTS (env.py runs as a file, not a module).
SCRIPTS = MigrationScripts(
    location=Path(__file__).parent,
    lock_key=0x4748_5445_5354_4D47,
    setting="GATEHOUSE_TEST_DATABASE_URL",
    version_table="notes_alembic_version",
    sqlite_write_lock=True,
)

run_environment(SCRIPTS, MetaData())
