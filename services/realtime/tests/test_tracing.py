"""Tracing on: a ``/ws`` handshake is a SERVER span that continues the gateway's trace;
the socket's life is not traced (it may last hours)."""

from __future__ import annotations

import contextlib
from typing import Any

import websockets
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

TRACE = "0af7651916cd43dd8448eb211c80319c"
GATEWAY = f"00-{TRACE}-b7ad6b7169203331-01"  # the gateway's CLIENT span, say


def _handshakes(spans: InMemorySpanExporter) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.name == "WS /ws"]


async def test_a_handshake_from_the_gateway_continues_its_trace(
    issuer: Any, start_realtime: Any, spans: InMemorySpanExporter
) -> None:
    headers = {"Authorization": f"Bearer {issuer.token()}", "traceparent": GATEWAY}
    async with (
        start_realtime() as rt,
        websockets.connect(rt.ws_url, additional_headers=headers) as ws,
    ):
        await ws.send('{"id": 1, "op": "ping"}')
        await ws.recv()
    (span,) = _handshakes(spans)
    assert span.kind == SpanKind.SERVER
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.parent is not None
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.status.status_code != StatusCode.ERROR


async def test_a_refused_handshake_is_an_error_span_with_its_close_code(
    start_realtime: Any, spans: InMemorySpanExporter
) -> None:
    headers = {"Authorization": "Bearer forged", "traceparent": GATEWAY}
    async with (
        start_realtime() as rt,
        websockets.connect(rt.ws_url, additional_headers=headers) as ws,
    ):
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.recv()
    (span,) = _handshakes(spans)
    assert span.attributes["gatehouse.websocket.close_code"] == 1008
    assert span.status.status_code == StatusCode.ERROR
