"""Tracing on: one proxied request is a server span with its stages' spans and a client
span, and the upstream continues the trace from the client span."""

from __future__ import annotations

import contextlib
import json

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from .conftest import config_for

AUTHORS = "/api/v1/authors"
TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{TRACE}-b7ad6b7169203331-01"


def _traceparent(record: dict) -> str:
    return dict(record["headers"])["traceparent"]


def _by_name(spans: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans.get_finished_spans()}


async def test_a_request_is_a_server_span_with_auth_limit_and_upstream_spans(
    start_gateway, issuer, upstream, http, spans: InMemorySpanExporter
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(
            url + AUTHORS, headers={**issuer.bearer(["admin"]), "traceparent": CALLER}
        )
    assert response.status_code == 200
    named = _by_name(spans)
    server = named[f"GET {AUTHORS}"]
    assert server.kind == SpanKind.SERVER
    assert server.parent is None  # the caller is no trusted proxy: a trace of its own
    assert f"{server.context.trace_id:032x}" != TRACE
    assert server.attributes["http.response.status_code"] == 200
    for name in ("auth", "rate limit"):
        assert named[name].parent.span_id == server.context.span_id
    client = named["GET"]
    assert client.kind == SpanKind.CLIENT
    assert client.parent.span_id == server.context.span_id
    # The upstream's parent is the client span, not whatever the caller sent.
    sent = _traceparent(upstream.seen[0]).split("-")
    assert sent[1:3] == [f"{client.context.trace_id:032x}", f"{client.context.span_id:016x}"]


async def test_a_trusted_proxys_trace_is_joined(
    start_gateway, issuer, upstream, http, spans: InMemorySpanExporter
) -> None:
    config = config_for(upstream.url, trusted_proxies=["127.0.0.0/8"])
    async with start_gateway(config) as url:
        await http.get(url + AUTHORS, headers={**issuer.bearer(["admin"]), "traceparent": CALLER})
    server = _by_name(spans)[f"GET {AUTHORS}"]
    assert f"{server.context.trace_id:032x}" == TRACE
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"
    assert _traceparent(upstream.seen[0]).split("-")[1] == TRACE


async def test_refused_requests_are_traced_and_probes_are_not(
    start_gateway, upstream, http, spans: InMemorySpanExporter
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        refused = await http.get(url + AUTHORS)
        await http.get(url + "/healthz")
    assert refused.status_code == 401
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind == SpanKind.SERVER]
    assert server.attributes["http.response.status_code"] == 401
    assert not [s for s in finished if s.kind == SpanKind.CLIENT]
    assert upstream.seen == []


async def test_off_the_callers_traceparent_passes_as_it_came(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        await http.get(url + AUTHORS, headers={**issuer.bearer(["admin"]), "traceparent": CALLER})
    assert _traceparent(upstream.seen[0]) == CALLER


async def test_a_websocket_handshake_is_traced_and_the_upstream_continues_it(
    start_gateway, issuer, upstream, spans: InMemorySpanExporter
) -> None:
    """Only the handshake (a socket lives for hours): a SERVER span, a CLIENT span whose
    context realtime gets instead of what an untrusted caller sent."""
    headers = {**issuer.bearer(["get-authors"]), "traceparent": CALLER}
    async with (
        start_gateway(config_for(upstream.url)) as url,
        connect(url.replace("http://", "ws://") + "/ws", additional_headers=headers) as ws,
    ):
        hello = json.loads(await ws.recv())
    named = {(s.name, s.kind): s for s in spans.get_finished_spans()}
    server, client = named[("WS /ws", SpanKind.SERVER)], named[("WS /ws", SpanKind.CLIENT)]
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert f"{server.context.trace_id:032x}" != TRACE  # an untrusted caller's trace
    assert client.attributes["gatehouse.upstream"] == "realtime"
    sent = hello["headers"]["traceparent"].split("-")
    assert sent[1:3] == [f"{client.context.trace_id:032x}", f"{client.context.span_id:016x}"]


async def test_a_refused_websocket_handshake_is_an_error_span(
    start_gateway, issuer, spans: InMemorySpanExporter
) -> None:
    from .conftest import dead_url

    async with (
        start_gateway(config_for(dead_url())) as url,
        connect(
            url.replace("http://", "ws://") + "/ws",
            additional_headers=issuer.bearer(["get-authors"]),
        ) as ws,
    ):
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
    (client,) = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert client.attributes["gatehouse.websocket.close_code"] == 1013
    assert client.status.status_code == StatusCode.ERROR
