"""Fixtures of the authors tests: migrated databases (SQLite and the real PostgreSQL),
the in-memory TestIssuer at the HTTP boundary, and the app driven through its lifespan."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters.cache import NoCache
from gatehouse.authors.adapters.database import (
    create_engine,
    session_factory,
    write_session_factory,
)
from gatehouse.authors.adapters.orm import start_mappers
from gatehouse.authors.app import create_app
from gatehouse.authors.migrations import migrate
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messagebus import MessageBus
from gatehouse.authors.service_layer.registry import routes
from gatehouse.authors.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import EventBus, InMemoryEventBus
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TestIssuer

ISSUER = "http://issuer.test/realms/gatehouse"
TABLES = ("books", "authors", "outbox", "audit_refusals", "idempotency_keys")
AUDIENCE = "gatehouse"


@pytest.fixture(scope="session")
def shared_postgres_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the whole session (creating a database costs
    about a second; emptying one costs milliseconds), dropped at the end."""
    from gatehouse.testing.plugin import _service_url

    admin = _service_url("postgres")
    name = f"gh_authors_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin)
    url = urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{name}", parts.query, ""))
    try:
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_sql(admin: str, sql: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file for the session; each test gets a copy (a copy costs well
    under a millisecond, running the migrations about a tenth of a second)."""
    path = tmp_path_factory.mktemp("authors-template") / "template.db"
    asyncio.run(migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database of this test."""
    path = tmp_path / "test.db"
    source, target = sqlite3.connect(sqlite_template), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL emptied."""
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        assert isinstance(url, str)
        return url
    url = request.getfixturevalue("shared_postgres_url")
    assert isinstance(url, str)
    asyncio.run(_empty(url))
    return url


@pytest.fixture
def postgres_database_url(shared_postgres_url: str) -> str:
    """The session's PostgreSQL, emptied: for tests that need several processes' worth of
    replicas on one database (SQLite is one process's file)."""
    asyncio.run(_empty(shared_postgres_url))
    return shared_postgres_url


async def _empty(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("SET lock_timeout = '5s'")
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    finally:
        await conn.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    start_mappers()
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    return TestIssuer(ISSUER, audience=AUDIENCE)


@pytest.fixture
async def verifier(issuer: TestIssuer) -> AsyncIterator[JWTVerifier]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler)) as http:
        verifier = JWTVerifier(ISSUER, AUDIENCE, http=http)
        await verifier.start()
        yield verifier
        await verifier.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> AuthorsSettings:
    return AuthorsSettings(
        database_url=database_url, data_dir=tmp_path, oidc_issuer=ISSUER, amqp_url=None
    )


@pytest.fixture
def bus() -> EventBus:
    return InMemoryEventBus()


@pytest.fixture
async def app(
    settings: AuthorsSettings, bus: EventBus, verifier: JWTVerifier
) -> AsyncIterator[FastAPI]:
    app = create_app(settings, bus=bus, verifier=verifier)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authors") as client:
        yield client


@pytest.fixture
def auth(issuer: TestIssuer) -> Callable[..., dict[str, str]]:
    def headers(*roles: str) -> dict[str, str]:
        return issuer.bearer(roles)

    return headers


@pytest.fixture
def messagebus(engine: AsyncEngine) -> MessageBus:
    """The real message bus over the SQLAlchemy unit of work (no cache)."""
    reads, writes = session_factory(engine), write_session_factory(engine)

    def uow(context: RequestContext, writing: bool) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(writes if writing else reads, context)

    return MessageBus(uow, routes(NoCache()))
