"""Tracing: off by default at no cost; on, one trace from a request over the bus to its
consumer, and the trace id in every log line."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gatehouse.common import tracing
from gatehouse.common.events import CloudEvent
from gatehouse.common.logging import JsonFormatter
from gatehouse.common.memory_bus import InMemoryEventBus
from gatehouse.common.requests import TrustedPeers

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_tracing_is_off_unless_an_endpoint_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    tracing.use_exporter(None)
    assert not tracing.enabled()
    assert tracing.provider("authors") is None
    with tracing.span("authors", "work") as current:
        assert not current.is_recording()
    with tracing.span("authors", "work", parent=TRACEPARENT):
        assert tracing.trace_id() == "0af7651916cd43dd8448eb211c80319c"  # logs still join it


async def test_one_trace_from_a_request_through_the_bus_to_its_consumer(
    spans: InMemorySpanExporter,
) -> None:
    bus = InMemoryEventBus()
    consumed = asyncio.Event()

    async def consume(event: CloudEvent) -> None:
        with (
            tracing.consume_span("realtime", event, "gatehouse.#"),
            tracing.span("realtime", "push authors"),
        ):
            pass
        consumed.set()

    await bus.subscribe("gatehouse.#", consume)
    with tracing.span("authors", "POST /v1/authors", kind=SpanKind.SERVER):
        written = CloudEvent(
            source="/t", type="gatehouse.author.created", traceparent=tracing.current_traceparent()
        )
    # later, in the relay: the row's traceparent is the request's
    with tracing.publish_span("authors", written, "gatehouse.events") as event:
        await bus.publish(event)
    await asyncio.wait_for(consumed.wait(), 5)
    await bus.close()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    request = by_name["POST /v1/authors"]
    publish = by_name["publish gatehouse.author.created"]
    process = by_name["process gatehouse.author.created"]
    push = by_name["push authors"]
    assert {s.context.trace_id for s in by_name.values()} == {request.context.trace_id}
    assert _parent(publish) == request.context.span_id
    assert _parent(process) == publish.context.span_id
    assert _parent(push) == process.context.span_id
    assert (publish.kind, process.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert publish.resource.attributes["service.name"] == "gatehouse-authors"
    assert process.resource.attributes["service.name"] == "gatehouse-realtime"


def _parent(span: Any) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_an_rpc_call_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    bus = InMemoryEventBus()

    async def handle(request: dict[str, Any]) -> Any:
        return tracing.trace_id()

    await bus.serve("rpc.authors", handle)
    with tracing.span("realtime", "call authors.list") as caller:
        reply = await bus.request("rpc.authors", {"method": "authors.list"}, timeout=5)
    await bus.close()
    assert reply["result"] == f"{caller.get_span_context().trace_id:032x}"
    served = next(s for s in spans.get_finished_spans() if s.name == "serve authors.list")
    assert served.kind == SpanKind.SERVER
    assert served.resource.attributes["service.name"] == "gatehouse-authors"


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", (), None)
    with tracing.span("authors", "work") as current:
        line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == f"{current.get_span_context().trace_id:032x}"
    assert "trace_id" not in json.loads(JsonFormatter().format(record))


def test_a_traceparent_is_believed_from_trusted_peers_only() -> None:
    propagator = tracing.TrustedTraceContext(TrustedPeers(["10.0.0.0/8"]))

    def scope(peer: str) -> dict[str, Any]:
        headers = [(b"traceparent", TRACEPARENT.encode())]
        return {"type": "http", "client": (peer, 1234), "headers": headers}

    def getter_get(carrier: dict[str, Any], key: str) -> list[str] | None:
        found = [v.decode() for k, v in carrier["headers"] if k.decode() == key]
        return found or None

    class Getter:
        get = staticmethod(getter_get)

        @staticmethod
        def keys(carrier: dict[str, Any]) -> list[str]:
            return [k.decode() for k, _ in carrier["headers"]]

    from opentelemetry import trace

    def trace_of(peer: str) -> int:
        context = propagator.extract(scope(peer), getter=Getter())  # type: ignore[arg-type]
        return trace.get_current_span(context).get_span_context().trace_id

    assert trace_of("10.1.2.3") == int("0af7651916cd43dd8448eb211c80319c", 16)
    assert trace_of("203.0.113.9") == 0
