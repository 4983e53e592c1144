"""Every FastAPI service of Gatehouse, built by its own ``create_app`` with test settings.

The kit's promises (errors, access log, health, profiles) hold for every service;
these fixtures let one test say so for all of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from gatehouse.testing import DEFAULT_ISSUER_URL

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
SERVICES = ["auth", "authors", "realtime"]
AppFactory = Callable[..., Awaitable[FastAPI]]


async def build_auth(tmp_path: Path, **values: Any) -> FastAPI:
    from gatehouse.auth import AuthSettings, create_app

    settings = AuthSettings.model_validate(
        {"GATEHOUSE_DATA_DIR": str(tmp_path), "GATEHOUSE_DEMO_PASSWORD": "demo-password", **values}
    )
    return create_app(settings, password_hasher=FAST_HASHER)


async def build_authors(tmp_path: Path, **values: Any) -> FastAPI:
    from gatehouse.authors.app import create_app
    from gatehouse.authors.migrations import migrate
    from gatehouse.authors.settings import AuthorsSettings

    url = f"sqlite+aiosqlite:///{tmp_path / 'authors.db'}"
    await migrate(url)
    settings = AuthorsSettings.model_validate(
        {"DATABASE_URL": url, "OIDC_ISSUER": DEFAULT_ISSUER_URL, **values}
    )
    return create_app(settings)


async def build_realtime(tmp_path: Path, **values: Any) -> FastAPI:
    from gatehouse.realtime import RealtimeSettings, create_app

    settings = RealtimeSettings.model_validate({"OIDC_ISSUER": DEFAULT_ISSUER_URL, **values})
    return create_app(settings)


BUILDERS: dict[str, Callable[..., Awaitable[FastAPI]]] = {
    "auth": build_auth,
    "authors": build_authors,
    "realtime": build_realtime,
}


@pytest.fixture(params=SERVICES)
def build_service(request: pytest.FixtureRequest, tmp_path: Path) -> AppFactory:
    """``await build_service(**environment)``: the service's app (lifespan not run yet)."""
    builder = BUILDERS[request.param]

    async def build(**values: Any) -> FastAPI:
        return await builder(tmp_path, **values)

    return build
