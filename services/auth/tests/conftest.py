"""Apps of the auth service built with test settings, in-process or on a real loopback port;
auth databases on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth import AuthSettings, create_app
from gatehouse.auth.database import create_engine
from gatehouse.auth.migrations import migrate
from gatehouse.testing import bind_loopback, serve

DEMO_PASSWORD = "correct horse battery"
# Real argon2id, with parameters cheap enough for many app starts per test run.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def auth_settings(data_dir: Path, **values: Any) -> AuthSettings:
    values.setdefault("GATEHOUSE_DEMO_PASSWORD", DEMO_PASSWORD)
    return AuthSettings.model_validate({"GATEHOUSE_DATA_DIR": str(data_dir), **values})


@pytest.fixture
def settings(tmp_path: Path) -> AuthSettings:
    return auth_settings(tmp_path)


@contextlib.asynccontextmanager
async def running(
    app: FastAPI, base_url: str = "http://auth.test", client: tuple[str, int] = ("127.0.0.1", 123)
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it in-process, as a server would, from the peer
    ``client`` (loopback: a trusted proxy by default)."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield http


@pytest.fixture
async def client(settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        yield client


@pytest.fixture
async def issuer_url(tmp_path: Path) -> AsyncIterator[str]:
    """The base URL of an embedded issuer on a real loopback port."""
    sock = bind_loopback()
    port = sock.getsockname()[1]
    settings = auth_settings(tmp_path / "issuer", GATEHOUSE_AUTH_PORT=port)
    async with serve(create_app(settings, password_hasher=FAST_HASHER), sock=sock) as url:
        yield url


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """An empty auth database: SQLite in a temporary folder, or a fresh PostgreSQL one."""
    return empty_database_url


@contextlib.asynccontextmanager
async def migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of its own on the migrated database at ``url``: one replica's view."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


class Clock:
    """A clock a test moves by hand (``clock.now += 60``)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each adapter of a store in turn: ``"memory"``, or the URL of a fresh SQLite or
    PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return "memory"
