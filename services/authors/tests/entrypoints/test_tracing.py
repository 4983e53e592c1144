"""A change is one trace: the request's span, the event written with it in the outbox,
the relay's publish span, and the event its consumers receive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters import orm
from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import CloudEvent, InMemoryEventBus
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TestIssuer

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE}-b7ad6b7169203331-01"  # the gateway's span, say


async def test_a_created_author_is_one_trace_from_the_request_to_its_event(
    spans: InMemorySpanExporter,
    settings: AuthorsSettings,
    verifier: JWTVerifier,
    engine: AsyncEngine,
    auth: Callable[..., dict[str, str]],
) -> None:
    event = await _create_author_as_a_trusted_caller(settings, verifier, auth)  # tracing on
    server = _one(spans, SpanKind.SERVER)
    publish = _one(spans, SpanKind.PRODUCER)
    assert _ids(server) == (TRACE, f"{server.context.span_id:016x}")
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"
    assert await _row_traceparent(engine) == f"00-{TRACE}-{server.context.span_id:016x}-01"
    assert publish.parent is not None
    assert publish.parent.span_id == server.context.span_id
    assert publish.name == "publish gatehouse.author.created"
    assert event.traceparent == f"00-{TRACE}-{publish.context.span_id:016x}-01"


async def test_with_tracing_off_the_event_still_carries_the_callers_trace(
    settings: AuthorsSettings,
    verifier: JWTVerifier,
    engine: AsyncEngine,
    auth: Callable[..., dict[str, str]],
) -> None:
    event = await _create_author_as_a_trusted_caller(settings, verifier, auth)
    assert await _row_traceparent(engine) == CALLER
    assert event.traceparent == CALLER


async def _create_author_as_a_trusted_caller(
    settings: AuthorsSettings, verifier: JWTVerifier, auth: Callable[..., dict[str, str]]
) -> CloudEvent:
    """POST an author with the caller's ``traceparent``; the event the relay published."""
    bus = InMemoryEventBus()
    received: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await bus.subscribe("gatehouse.author.#", received.put)
    app = create_app(settings, bus=bus, verifier=verifier)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as client,
    ):
        response = await client.post(
            "/v1/authors",
            json={"name": "Ursula K. Le Guin"},
            headers={**auth("create-author"), "traceparent": CALLER},
        )
        assert response.status_code == 201
        return await asyncio.wait_for(received.get(), 10)


def _one(spans: InMemorySpanExporter, kind: SpanKind) -> ReadableSpan:
    (found,) = [s for s in spans.get_finished_spans() if s.kind == kind]
    return found


def _ids(span: Any) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


async def _row_traceparent(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        value = await conn.scalar(select(orm.outbox.c.traceparent))
    return value if value is None else str(value)


async def test_a_change_through_rpc_is_a_child_of_its_serve_span(
    spans: InMemorySpanExporter,
    settings: AuthorsSettings,
    verifier: JWTVerifier,
    engine: AsyncEngine,
    issuer: TestIssuer,
) -> None:
    bus = InMemoryEventBus()
    app = create_app(settings, bus=bus, verifier=verifier)
    token = issuer.bearer(["admin"])["Authorization"].removeprefix("Bearer ")
    request = {
        "method": "authors.create",
        "params": {"name": "Le Guin"},
        "context": {"token": token, "traceparent": CALLER},
    }
    async with app.router.lifespan_context(app):
        reply = await bus.request("rpc.authors", request, timeout=5)
    assert reply["ok"]
    served = _one(spans, SpanKind.SERVER)
    assert served.name == "serve authors.create"
    assert await _row_traceparent(engine) == f"00-{TRACE}-{served.context.span_id:016x}-01"
