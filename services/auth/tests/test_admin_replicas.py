"""The admin API across replicas on the real PostgreSQL, and its events on the real RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from gatehouse.auth import create_app
from gatehouse.common import InMemoryEventBus
from gatehouse.common.bus import bus_from_url
from gatehouse.common.events import CloudEvent, EventBus

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running
from .test_admin import EVENT_SCHEMAS
from .test_api import bearer, login

pytestmark = pytest.mark.services


@contextlib.asynccontextmanager
async def replica(
    folder: Path, database: str, bus: EventBus | None = None, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = auth_settings(folder, GATEHOUSE_AUTH_DATABASE_URL=database, **env)
    async with running(create_app(settings, password_hasher=FAST_HASHER, bus=bus)) as client:
        yield client


async def test_a_user_disabled_on_one_replica_cannot_log_in_on_another(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        replica(tmp_path / "a", postgres_url) as a,
        replica(tmp_path / "b", postgres_url) as b,
    ):
        admin = bearer(await login(a, "admin"))
        body = {"username": "rep", "password": DEMO_PASSWORD, "roles": ["get-authors"]}
        assert (await a.post("/auth/admin/users", json=body, headers=admin)).status_code == 201
        tokens = await login(b, "rep")
        await a.patch("/auth/admin/users/rep", json={"enabled": False}, headers=admin)
        credentials = {"username": "rep", "password": DEMO_PASSWORD}
        assert (await b.post("/auth/token", json=credentials)).status_code == 401
        refresh = {"refresh_token": tokens["refresh_token"]}
        assert (await b.post("/auth/refresh", json=refresh)).status_code == 401
        items = (await b.get("/internal/revocations")).json()["items"]
        assert [i["kind"] for i in items] == ["subject"]


async def test_two_relays_publish_each_change_once_in_sequence(
    tmp_path: Path, postgres_url: str
) -> None:
    bus = InMemoryEventBus()
    events: list[CloudEvent] = []

    async def received(event: CloudEvent) -> None:
        events.append(event)

    await bus.subscribe("gatehouse.user.*", received)
    async with (
        replica(tmp_path / "a", postgres_url, bus) as a,
        replica(tmp_path / "b", postgres_url, bus) as b,
    ):
        admin = bearer(await login(a, "admin"))
        creates = [
            client.post(
                "/auth/admin/users",
                json={"username": f"u{n}", "password": DEMO_PASSWORD},
                headers=admin,
            )
            for n, client in enumerate([a, b] * 5)
        ]
        assert {r.status_code for r in await asyncio.gather(*creates)} == {201}
        for _ in range(100):
            if len(events) >= 10:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # a poll of each relay more: nothing is sent twice
    await bus.close()
    assert sorted(e.data["username"] for e in events) == sorted(f"u{n}" for n in range(10))
    assert [e.sequence for e in events] == list(range(1, 11))


async def test_events_reach_rabbitmq(tmp_path: Path, amqp_namespace) -> None:
    listener = bus_from_url(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await listener.start()
    received: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await listener.subscribe("gatehouse.user.*", received.put)
    env = {"AMQP_URL": amqp_namespace.url, "GATEHOUSE_AMQP_EXCHANGE": amqp_namespace.exchange}
    try:
        async with replica(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}", **env) as app:
            admin = bearer(await login(app, "admin"))
            body = {"username": "bunny", "password": DEMO_PASSWORD, "roles": ["admin"]}
            assert (await app.post("/auth/admin/users", json=body, headers=admin)).is_success
            event = await asyncio.wait_for(received.get(), 10)
    finally:
        await listener.close()
    assert event.type == "gatehouse.user.created"
    schema = json.loads((EVENT_SCHEMAS / event.type / "v1.json").read_text())
    instance = event.model_dump(mode="json", exclude_none=True)
    assert [e.message for e in Draft202012Validator(schema).iter_errors(instance)] == []
