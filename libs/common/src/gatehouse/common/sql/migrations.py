"""Run one service's Alembic scripts to head, one replica at a time.

A service describes its scripts once with :class:`MigrationScripts` and its
``env.py`` shrinks to a call of :func:`run_environment`. No ``alembic.ini`` is
needed: the configuration is built in code. Developers can still run the Alembic
CLI with ``alembic -x url=<the database URL> -c /dev/null ...`` pointed at the
service's migrations folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.health import Check, CheckFn
from gatehouse.common.sql.database import create_engine


@dataclass(frozen=True)
class MigrationScripts:
    """One service's Alembic scripts and how its replicas take turns running them.

    ``location`` is the folder holding ``env.py`` and ``versions/``; ``lock_key`` the
    ``pg_advisory_xact_lock`` key (distinct per service, so that services sharing a
    PostgreSQL database do not wait for each other); ``setting`` the variable that
    names the database, for messages; ``service`` the argument of ``gatehouse
    migrate`` that upgrades it. With ``sqlite_write_lock`` the upgrade first takes
    SQLite's write lock (``BEGIN IMMEDIATE``), so that processes sharing a database
    file migrate one after the other.
    """

    location: Path
    lock_key: int
    setting: str
    version_table: str = "alembic_version"
    sqlite_write_lock: bool = False
    service: str = ""

    @property
    def command(self) -> str:
        """What an operator runs to bring the database to the newest schema."""
        return f"gatehouse migrate {self.service}".strip()

    def config(self, connection: Connection | None = None) -> Config:
        """The Alembic configuration; ``env.py`` runs on ``connection`` when given."""
        config = Config()
        config.set_main_option("script_location", str(self.location))
        config.attributes["connection"] = connection
        return config

    async def migrate(self, engine: AsyncEngine) -> None:
        """Upgrade the database of ``engine`` to head (idempotent; safe for concurrent starts)."""
        async with engine.begin() as conn:
            await conn.run_sync(self.upgrade)

    def upgrade(self, connection: Connection) -> None:
        """Upgrade to head on ``connection``, under the lock that serialises replicas."""
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.lock_key})
        elif self.sqlite_write_lock:
            # The sqlite3 driver runs DDL outside any transaction; take the write lock
            # first so that processes sharing a data folder migrate one after the other.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        command.upgrade(self.config(connection), "head")

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.config()).get_current_head()

    def current_revision(self, connection: Connection) -> str | None:
        opts = {"version_table": self.version_table}
        with _quiet(_ALEMBIC_LOG):  # "Context impl ..." at every look, not only migrations
            return MigrationContext.configure(connection, opts=opts).get_current_revision()

    async def revisions(self, engine: AsyncEngine) -> tuple[str | None, str | None]:
        """``(current, head)``: the database's revision (None when unmigrated) and the newest."""
        async with engine.connect() as conn:
            current = await conn.run_sync(self.current_revision)
        return current, self.head_revision()

    def check(self, engine: AsyncEngine) -> CheckFn:
        """The readiness check ``schema``: the database is at the newest revision."""

        async def check() -> Check:
            current, head = await self.revisions(engine)
            if current == head:
                return Check(True, f"at {head}")
            return Check(False, self._behind(current, head))

        return check

    async def require_current(self, engine: AsyncEngine, setting: str | None = None) -> None:
        """Start-up in production: a ConfigurationError naming the setting (``setting``, or
        the scripts' own) and the command unless the database is at the newest revision
        (production never migrates itself)."""
        current, head = await self.revisions(engine)
        if current != head:
            raise ConfigurationError(setting or self.setting, self._behind(current, head))

    def _behind(self, current: str | None, head: str | None) -> str:
        where = f"at revision {current}" if current else "not migrated"
        return f"the database is {where}, {head} expected: run `{self.command}`"


_ALEMBIC_LOG = logging.getLogger("alembic.runtime.migration")


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


EngineFactory = Callable[[str], AsyncEngine]


def run_environment(
    scripts: MigrationScripts, metadata: MetaData, engine_factory: EngineFactory = create_engine
) -> None:
    """The body of a service's ``env.py``.

    Runs on the connection that :meth:`MigrationScripts.migrate` hands over, or, from
    the Alembic CLI, on a database given with ``-x url=`` (engine from ``engine_factory``).
    """
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection, scripts, metadata)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(f"pass the database with: alembic -x url=<{scripts.setting}> ...")
    asyncio.run(_run_from_url(engine_factory(url), scripts, metadata))


def _run_on(connection: Connection, scripts: MigrationScripts, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        version_table=scripts.version_table,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(engine: AsyncEngine, scripts: MigrationScripts, meta: MetaData) -> None:
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_on, scripts, meta)
    finally:
        await engine.dispose()
