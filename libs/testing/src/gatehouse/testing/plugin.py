"""The pytest plugin of Gatehouse suites: fixtures for the real PostgreSQL, Redis and RabbitMQ.

Loaded automatically wherever ``gatehouse-testing`` is installed (entry point ``pytest11``).

URLs come from ``GATEHOUSE_TEST_POSTGRES_URL``, ``GATEHOUSE_TEST_REDIS_URL`` and
``GATEHOUSE_TEST_AMQP_URL`` (defaults: the loopback services every development
machine of this project runs; set one to an empty string to opt out). A service
that is unset or unreachable skips its tests with the reason, unless
``GATEHOUSE_REQUIRE_SERVICES=1`` (CI), which turns the skip into a failure.

Each test gets its own database, Redis key prefix and exchange/queue names, and
everything is removed afterwards, so runs never interfere.

These fixtures are synchronous (they use ``asyncio.run`` for set-up and clean-up):
request them from tests or synchronous fixtures, not from async fixtures.
A suite that needs one for longer than a test (a cluster shared by a module or a
session) uses the context managers behind them: :func:`new_postgres_database`,
:func:`new_redis_namespace` and :func:`new_amqp_namespace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULTS = {
    "postgres": "postgresql://postgres@127.0.0.1:5432/postgres",
    "redis": "redis://127.0.0.1:6379/0",
    "amqp": "amqp://guest:guest@127.0.0.1:5672/",
}


def _service_url(kind: str) -> str:
    variable = f"GATEHOUSE_TEST_{kind.upper()}_URL"
    url = os.environ.get(variable, DEFAULTS[kind])
    reason = None
    if not url:
        reason = f"{variable} is empty"
    else:
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        except OSError as exc:
            reason = f"{kind} at {parts.hostname}:{parts.port} unreachable ({exc}); set {variable}"
    if reason is not None:
        if os.environ.get("GATEHOUSE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"GATEHOUSE_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return url


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (``postgresql+asyncpg://``), dropped afterwards."""
    import asyncpg

    admin = _service_url("postgres")
    name = _unique("gh_test")

    async def admin_sql(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin_sql(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(admin)
    url = urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{name}", parts.query, ""))
    try:
        yield url
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (``postgresql+asyncpg://``), dropped afterwards."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once as SQLite in a temporary folder and once as a fresh
    PostgreSQL database (``postgres_url``), so adapters are proven on both."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


@dataclass
class RedisNamespace:
    url: str
    prefix: str


@contextlib.contextmanager
def new_redis_namespace() -> Iterator[RedisNamespace]:
    """The Redis URL and a fresh key prefix; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    ns = RedisNamespace(_service_url("redis"), _unique("gh-test") + ":")
    try:
        yield ns
    finally:

        async def cleanup() -> None:
            client = aioredis.from_url(ns.url)
            try:
                keys = [k async for k in client.scan_iter(match=f"{ns.prefix}*", count=500)]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()

        asyncio.run(cleanup())


@pytest.fixture
def redis_namespace() -> Iterator[RedisNamespace]:
    """The Redis URL and a key prefix of this test; its keys are deleted afterwards."""
    with new_redis_namespace() as ns:
        yield ns


@dataclass
class AmqpNamespace:
    url: str
    exchange: str
    queues: list[str] = field(default_factory=list)

    def queue(self, name: str) -> str:
        """A queue name of this test, removed with its dead-letter queue afterwards."""
        full = f"{self.exchange}.{name}"
        self.queues += [full, f"{full}.dlq"]
        return full

    @property
    def rpc_exchange(self) -> str:
        """The request/reply exchange of this test's bus (``<namespace>.rpc``)."""
        return self.exchange.removesuffix(".events") + ".rpc"


@contextlib.contextmanager
def new_amqp_namespace() -> Iterator[AmqpNamespace]:
    """The AMQP URL and a fresh exchange; exchange, stream and queues go afterwards."""
    import aio_pika

    ns = AmqpNamespace(_service_url("amqp"), _unique("gh-test") + ".events")
    try:
        yield ns
    finally:

        async def cleanup() -> None:
            connection = await aio_pika.connect(ns.url)
            async with connection:
                channel = await connection.channel()
                for queue in [f"{ns.exchange}.stream", *ns.queues]:
                    await channel.queue_delete(queue)
                await channel.exchange_delete(ns.exchange)
                await channel.exchange_delete(ns.rpc_exchange)

        asyncio.run(cleanup())


@pytest.fixture
def amqp_namespace() -> Iterator[AmqpNamespace]:
    """The AMQP URL and an exchange of this test; exchange, stream and queues go afterwards."""
    with new_amqp_namespace() as ns:
        yield ns


@pytest.fixture
def spans() -> Iterator[Any]:
    """Tracing on for the test, this process's spans kept in an ``InMemorySpanExporter``
    (build apps inside the test, after this fixture)."""
    from gatehouse.testing._tracing import recorded_spans

    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def log_lines() -> Iterator[Any]:
    """This process's log records at INFO and above, as production's JSON lines
    (:class:`gatehouse.testing.LogLines`)."""
    from gatehouse.testing._logs import recorded_lines

    with recorded_lines() as lines:
        yield lines
