"""The HTTP side of the service: health, readiness, metrics, AsyncAPI and start-up checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import CloudEvent, InMemoryEventBus
from gatehouse.realtime import UVICORN_WS_OPTIONS, RealtimeSettings, create_app
from gatehouse.testing import bind_loopback


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with bind_loopback() as sock:
        yield sock.getsockname()[1]


async def test_health_and_readiness(start_realtime: Any) -> None:
    async with start_realtime() as rt, httpx.AsyncClient(base_url=rt.http_url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert health.json() == {"status": "ok"}
    assert health.headers["x-request-id"]
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"jwks", "bus", "intake", "accepting"}


async def test_not_ready_while_the_issuer_is_unreachable(
    start_realtime: Any, closed_port: int
) -> None:
    issuer = f"http://127.0.0.1:{closed_port}/realms/gone"
    async with (
        start_realtime(oidc_issuer=issuer) as rt,
        httpx.AsyncClient(base_url=rt.http_url) as http,
    ):
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["jwks"]["ok"] is False


async def test_metrics_count_open_connections(issuer: Any, start_realtime: Any) -> None:
    async with (
        start_realtime() as rt,
        httpx.AsyncClient(base_url=rt.http_url) as http,
        rt.connect(issuer.token()) as client,
    ):
        await client.call(id="1", op="ping")
        during = _sample((await http.get("/metrics")).text, "gatehouse_realtime_connections")
    assert during >= 1


METRICS = (
    'gatehouse_events_consumed_total{service="realtime",type="gatehouse.author.updated"}',
    "gatehouse_realtime_subscriptions",
    'gatehouse_realtime_messages_total{direction="out",kind="event"}',
    'gatehouse_realtime_messages_total{direction="in",kind="request"}',
    'gatehouse_realtime_duplicates_dropped_total{reason="id"}',
    'gatehouse_realtime_duplicates_dropped_total{reason="sequence"}',
    "gatehouse_realtime_event_lag_seconds_count",
)


async def test_metrics_count_events_in_and_out_subscriptions_and_duplicates(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    author = "00000000-0000-4000-8000-00000000000c"
    first = CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.updated",
        subject=author,
        data={"id": author},
        sequence=1,
    )
    replayed = first.model_copy(update={"id": "another-id"})  # same sequence, new id
    async with (
        start_realtime(bus=bus) as rt,
        httpx.AsyncClient(base_url=rt.http_url) as http,
        rt.connect(issuer.token()) as client,
    ):
        before = _samples((await http.get("/metrics")).text)
        await client.call(id="1", op="subscribe", channel="authors")
        for event in (first, first, replayed):
            await bus.publish(event)
        pushed = await client.receive()
        await client.call(id="2", op="ping")  # nothing else was pushed before the pong
        after = _samples((await http.get("/metrics")).text)
    assert pushed["event"]["id"] == first.id
    delta = [after[name] - before[name] for name in METRICS]
    # consumed 3; 1 subscription; 1 event out (channel authors: 1 subscriber); 2 requests;
    # duplicates: 1 by id, 3 by sequence (authors, authors.<id> and audit); lag observed twice
    assert delta == [3, 1, 1, 2, 1, 3, 2]


def _samples(exposition: str) -> dict[str, float]:
    values = dict.fromkeys(METRICS, 0.0)
    for line in exposition.splitlines():
        name, _, value = line.rpartition(" ")
        if name in values:
            values[name] = float(value)
    return values


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


async def test_asyncapi_document_describes_the_protocol(start_realtime: Any) -> None:
    async with start_realtime() as rt, httpx.AsyncClient(base_url=rt.http_url) as http:
        doc = (await http.get("/asyncapi.json")).json()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["channels"]["ws"]["address"] == "/ws"
    messages = doc["channels"]["ws"]["messages"]
    ops = messages["request"]["payload"]["properties"]["op"]["enum"]
    assert set(ops) == {"subscribe", "unsubscribe", "ping", "auth", "call"}
    assert {f"{op}Request" for op in ops} <= set(messages)
    methods = {
        b["properties"]["method"]["const"] for b in messages["callRequest"]["payload"]["oneOf"]
    }
    verbs = ("list", "get", "create", "update", "delete")
    assert methods == {f"{resource}.{verb}" for resource in ("authors", "books") for verb in verbs}
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_a_wrong_amqp_url_names_the_variable() -> None:
    with pytest.raises(pydantic.ValidationError, match="AMQP_URL"):
        RealtimeSettings(amqp_url="http://rabbit:5672/")


async def test_an_unreachable_broker_fails_start_up_naming_the_setting(
    issuer: Any, closed_port: int
) -> None:
    settings = RealtimeSettings(
        oidc_issuer=issuer.issuer_url, amqp_url=f"amqp://guest:guest@127.0.0.1:{closed_port}/"
    )
    app = create_app(settings)
    with pytest.raises(ConfigurationError) as failed:
        async with app.router.lifespan_context(app):
            pass
    assert failed.value.setting == "AMQP_URL"


def test_uvicorn_options_keep_idle_sockets_small() -> None:
    assert UVICORN_WS_OPTIONS["ws_per_message_deflate"] is False
    assert UVICORN_WS_OPTIONS["ws_max_size"] > RealtimeSettings().max_message_bytes


async def test_a_handshake_while_the_issuer_is_down_is_closed_with_1013(
    issuer: Any, start_realtime: Any, closed_port: int
) -> None:
    down = f"http://127.0.0.1:{closed_port}/realms/gone"
    async with start_realtime(oidc_issuer=down) as rt, rt.connect(issuer.token()) as client:
        assert await client.close_code() == 1013
