"""Running a package's Alembic scripts to head with gatehouse.common.sql."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from gatehouse.common.sql import MigrationScripts, create_engine

# The same scripts as scripts/env.py describes.
SCRIPTS = MigrationScripts(
    location=Path(__file__).parent / "scripts",
    lock_key=0x4748_5445_5354_4D47,
    setting="GATEHOUSE_TEST_DATABASE_URL",
    version_table="notes_alembic_version",
    sqlite_write_lock=True,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'notes.db'}"


@pytest.fixture(params=["sqlite_url", pytest.param("postgres_url", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database: SQLite in a temporary folder, or a fresh PostgreSQL one."""
    url = request.getfixturevalue(request.param)
    assert isinstance(url, str)
    return url


async def schema_of(url: str) -> tuple[set[str], str | None]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            revision = await conn.run_sync(SCRIPTS.current_revision)
    finally:
        await engine.dispose()
    return tables, revision


async def test_an_empty_database_is_at_no_revision(database_url: str) -> None:
    assert await schema_of(database_url) == (set(), None)


async def test_migrating_twice_reaches_head_once(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await SCRIPTS.migrate(engine)
        await SCRIPTS.migrate(engine)
    finally:
        await engine.dispose()
    tables, revision = await schema_of(database_url)
    assert tables == {"notes", "notes_alembic_version"}  # the version table is the one named
    assert revision == SCRIPTS.head_revision() == "0001"


async def test_replicas_starting_together_take_turns(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(SCRIPTS.migrate(engine) for engine in engines))
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
    tables, revision = await schema_of(database_url)
    assert "notes" in tables
    assert revision == SCRIPTS.head_revision()


def alembic_cli(*x: str) -> Config:
    """The configuration ``alembic -x ... upgrade head`` would build for the test scripts."""
    config = SCRIPTS.config()
    config.cmd_opts = argparse.Namespace(x=list(x))
    return config


def test_the_alembic_cli_migrates_the_database_given_with_x_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_cli(f"url={url}"), "head")
    tables, revision = asyncio.run(schema_of(url))
    assert "notes" in tables
    assert revision == SCRIPTS.head_revision()


def test_the_alembic_cli_without_a_url_names_the_setting() -> None:
    with pytest.raises(SystemExit, match=r"-x url=<GATEHOUSE_TEST_DATABASE_URL>"):
        command.upgrade(alembic_cli(), "head")
