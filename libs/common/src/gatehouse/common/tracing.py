"""OpenTelemetry traces across the whole path: HTTP, the gateway's stages, the bus.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: then no provider, no span and no
instrumentation exist, and a hot path pays one boolean test (:data:`state.on`).
On: one tracer provider per service (``service.name`` ``gatehouse-<service>``, or
``OTEL_SERVICE_NAME``), batched OTLP/HTTP export configured by the standard
``OTEL_EXPORTER_OTLP_*`` and ``OTEL_BSP_*`` variables.

The trace context travels as W3C ``traceparent``: in HTTP headers (a service
believes it only from ``GATEHOUSE_TRUSTED_PROXIES`` peers), in the outbox row and
the CloudEvent's ``traceparent`` attribute, and in the AMQP header of that name.

* :func:`instrument_fastapi` (server spans) and :func:`instrument_httpx` (client
  spans, ``traceparent`` injected);
* :func:`span` for a stage of one's own, :func:`inject` to pass the context on;
* :func:`publish_span` and :func:`consume_span` for the bus;
* :func:`current_traceparent` and :func:`trace_id` for the context at hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import CarrierT, Getter, default_getter
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gatehouse.common.requests import DEFAULT_TRUSTED_PROXIES, IPNetwork, TrustedPeers

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from gatehouse.common.events import CloudEvent

log = logging.getLogger("gatehouse.tracing")
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
NOT_TRACED = "/healthz,/readyz,/metrics"  # probes and scrapes would drown the traces


class _State:
    """Whether tracing is on, and the providers of the services of this process."""

    def __init__(self) -> None:
        self.on = bool(os.environ.get(ENDPOINT))
        self.exporter: SpanExporter | None = None  # a test's exporter, instead of OTLP
        self.providers: dict[str, TracerProvider] = {}
        # One tracer per service: the SDK's get_tracer costs more than the span it starts.
        self.tracers: dict[str, trace.Tracer] = {}
        self.propagator: TrustedTraceContext | None = None


state = _State()


def enabled() -> bool:
    """Whether spans are made and exported in this process."""
    return state.on


def use_exporter(exporter: SpanExporter | None) -> None:
    """Export every span of this process to ``exporter`` (tests), or stop (``None``).

    Providers made before keep exporting where they did; build apps after this call.
    """
    state.exporter = exporter
    state.on = exporter is not None or bool(os.environ.get(ENDPOINT))
    state.providers.clear()
    state.tracers.clear()


def provider(service: str) -> TracerProvider | None:
    """The tracer provider of ``service`` (made on first use), or None when tracing is off."""
    if not state.on:
        return None
    made = state.providers.get(service)
    if made is None:
        made = state.providers[service] = _new_provider(service)
    return made


def _new_provider(service: str) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or f"gatehouse-{service}"
    made = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if state.exporter is not None:
        made.add_span_processor(SimpleSpanProcessor(state.exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("tracing %s as %s", service, name)
    return made


def tracer(service: str) -> trace.Tracer:
    """The tracer of ``service`` (made once): a no-op one when tracing is off."""
    found = state.tracers.get(service)
    if found is not None:
        return found
    made = provider(service)
    if made is None:
        return trace.NoOpTracer()
    found = state.tracers[service] = made.get_tracer(f"gatehouse.{service}")
    return found


def shutdown() -> None:
    """Export what is buffered and stop (the end of a process)."""
    for made in state.providers.values():
        made.shutdown()
    state.providers.clear()
    state.tracers.clear()


class TrustedTraceContext(TraceContextTextMapPropagator):
    """W3C trace context, believed from an HTTP peer only when it is a trusted proxy.

    The FastAPI instrumentation extracts from the ASGI scope; a scope whose client is
    not trusted starts a new trace instead of joining the one its caller claims.
    """

    def __init__(self, trusted: TrustedPeers) -> None:
        self.trusted = trusted

    def extract(
        self,
        carrier: CarrierT,
        context: otel_context.Context | None = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> otel_context.Context:
        if _is_untrusted_scope(carrier, self.trusted):
            return context if context is not None else otel_context.Context()
        return super().extract(carrier, context, getter)


def _is_untrusted_scope(carrier: Any, trusted: TrustedPeers) -> bool:
    is_scope = isinstance(carrier, dict) and carrier.get("type") in ("http", "websocket")
    return is_scope and not trusted.trusts(carrier)


def trust(networks: Sequence[str | IPNetwork] = DEFAULT_TRUSTED_PROXIES) -> None:
    """Believe ``traceparent`` from these peers only (every service of the process)."""
    state.propagator = TrustedTraceContext(TrustedPeers(networks))
    propagate.set_global_textmap(state.propagator)


def instrument_fastapi(
    app: FastAPI,
    service: str,
    trusted_proxies: Sequence[str | IPNetwork] = DEFAULT_TRUSTED_PROXIES,
    *,
    exclude: Sequence[str] = (),
) -> None:
    """Server spans for every request of ``app`` but the probes and the ``exclude``d paths
    (a long-lived WebSocket is better traced by the work done for it); nothing when off."""
    made = provider(service)
    if made is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    trust(trusted_proxies)
    excluded = ",".join([NOT_TRACED, *exclude])
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=made, excluded_urls=excluded, exclude_spans=["receive", "send"]
    )


def instrument_httpx(client: httpx.AsyncClient, service: str) -> httpx.AsyncClient:
    """Client spans for ``client``'s requests, with ``traceparent`` sent; nothing when off."""
    made = provider(service)
    if made is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=made)
    return client


@contextlib.contextmanager
def span(
    service: str,
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: str | None = None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span]:
    """A span of ``service`` around the block, current within it.

    ``parent`` (a ``traceparent``) makes it the child of that remote span instead of
    the current one. When tracing is off the block runs under a span that records
    nothing (joining ``parent``'s trace id, for the logs).
    """
    context = _context_of(parent) if parent else None
    if not state.on:
        with _attached(context):
            yield trace.get_current_span()
        return
    with tracer(service).start_as_current_span(
        name, context=context, kind=kind, links=links, attributes=attributes
    ) as current:
        yield current


@contextlib.contextmanager
def joined(traceparent: str) -> Iterator[None]:
    """The remote trace of ``traceparent`` as the current context, without a span of
    ours: what the logs of a service with tracing off say their ``trace_id`` is."""
    with _attached(_context_of(traceparent)):
        yield


@contextlib.contextmanager
def _attached(context: otel_context.Context | None) -> Iterator[None]:
    if context is None:
        yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


_W3C = TraceContextTextMapPropagator()


def _context_of(traceparent: str) -> otel_context.Context:
    return _W3C.extract({"traceparent": traceparent})


def inject(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Put the current context (``traceparent``, ``tracestate``) into ``headers``."""
    _W3C.inject(headers)
    return headers


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, or None outside any trace."""
    return inject({}).get("traceparent")


def trace_id() -> str | None:
    """The current trace id (32 hex digits), or None outside any trace."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


@contextlib.contextmanager
def publish_span(service: str, event: CloudEvent, destination: str) -> Iterator[CloudEvent]:
    """A PRODUCER span for publishing ``event`` to ``destination``, child of the event's
    ``traceparent`` (the request that caused it); yields the event to publish, whose
    ``traceparent`` is now this span's, so its consumers continue the trace."""
    attributes = _messaging(event, destination, "publish")
    name = f"publish {event.type}"
    with span(
        service, name, kind=SpanKind.PRODUCER, parent=event.traceparent, attributes=attributes
    ):
        traceparent = current_traceparent() or event.traceparent
        yield event.model_copy(update={"traceparent": traceparent})


@contextlib.contextmanager
def consume_span(service: str, event: CloudEvent, source: str) -> Iterator[Span]:
    """A CONSUMER span for handling ``event`` taken from ``source``, child of the
    publisher's span (the event's ``traceparent``); current within the block, so work
    done for the event (a push to clients) nests under it."""
    attributes = _messaging(event, source, "process")
    name = f"process {event.type}"
    with span(
        service, name, kind=SpanKind.CONSUMER, parent=event.traceparent, attributes=attributes
    ) as current:
        yield current


def _messaging(event: CloudEvent, destination: str, operation: str) -> dict[str, str]:
    return {
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
        "messaging.message.id": event.id,
        "cloudevents.event_type": event.type,
        "cloudevents.event_source": event.source,
    }


def link_to_current() -> Sequence[Link]:
    """A link to the current span, for work that another span does on its behalf."""
    context = trace.get_current_span().get_span_context()
    return [Link(context)] if context.is_valid else []


__all__ = [
    "SpanKind",
    "TrustedTraceContext",
    "consume_span",
    "current_traceparent",
    "enabled",
    "inject",
    "instrument_fastapi",
    "instrument_httpx",
    "joined",
    "link_to_current",
    "provider",
    "publish_span",
    "shutdown",
    "span",
    "state",
    "trace_id",
    "tracer",
    "trust",
    "use_exporter",
]
