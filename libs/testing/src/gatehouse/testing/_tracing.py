"""Seeing the spans a test's code made: in this process, or in the processes it started.

* :func:`recorded_spans` (also the pytest fixture ``spans``): every span of this
  process goes to an in-memory exporter for the block.
* :class:`OtlpCollector`: a small OTLP/HTTP collector (``POST /v1/traces``, protobuf)
  as an ASGI app; serve it and point the processes' ``OTEL_EXPORTER_OTLP_ENDPOINT`` at it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gatehouse.common import tracing
from gatehouse.common.types import Receive, Scope, Send


@contextlib.contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the block, every span of this process kept in memory.

    Apps must be built inside the block (their providers are made when they are).
    """
    exporter = InMemorySpanExporter()
    tracing.use_exporter(exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()
        tracing.use_exporter(None)


@dataclass(frozen=True)
class CollectedSpan:
    """A span as another process exported it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str

    SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind values


class OtlpCollector:
    """Receives OTLP/HTTP protobuf exports and keeps the spans, as an ASGI app."""

    __test__ = False

    def __init__(self) -> None:
        self.spans: list[CollectedSpan] = []

    def of(self, service: str) -> list[CollectedSpan]:
        return [s for s in self.spans if s.service == service]

    def traces(self) -> dict[str, list[CollectedSpan]]:
        """The spans by trace id."""
        found: dict[str, list[CollectedSpan]] = {}
        for collected in self.spans:
            found.setdefault(collected.trace_id, []).append(collected)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/v1/traces":
            self._keep(body)
            status, answer = 200, ExportTraceServiceResponse().SerializeToString()
            content_type = b"application/x-protobuf"
        else:
            status, answer = 404, json.dumps({"error": "not_found"}).encode()
            content_type = b"application/json"
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(answer))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    def _keep(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        CollectedSpan(
                            service=service,
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                        )
                    )
