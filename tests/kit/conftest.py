"""Every FastAPI service of Gatehouse, built by its own ``create_app`` with test settings.

The kit's promises (errors, access log, health, profiles) hold for every service;
these fixtures let one test say so for all of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from gatehouse.common.logging import JsonFormatter
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


class LogLines(logging.Handler):
    """Log records as the JSON lines production writes, formatted when emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == logger]

    def at_least(self, level: str) -> list[dict[str, Any]]:
        order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        return [line for line in self.lines if order.index(line["level"]) >= order.index(level)]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):  # serve() leaves their propagation alone
        logging.getLogger(name).propagate = True
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
