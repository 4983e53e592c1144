"""Fixtures of the authors tests: migrated databases (SQLite and the real PostgreSQL),
the in-memory TestIssuer at the HTTP boundary, and the app driven through its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters.database import create_engine
from gatehouse.authors.adapters.orm import start_mappers
from gatehouse.authors.app import create_app
from gatehouse.authors.migrations import migrate
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import EventBus, InMemoryEventBus
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TestIssuer

ISSUER = "http://issuer.test/realms/gatehouse"
AUDIENCE = "gatehouse"


@pytest.fixture
async def database_url(empty_database_url: str) -> str:
    """The same database, migrated to the newest schema."""
    await migrate(empty_database_url)
    return empty_database_url


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
