"""The edge stage: one request's whole path through the gateway, built from one config.

    parse the request once (Exchange) -> the gateway's own endpoints
    -> EdgePolicy.admit: route -> identify -> limit -> authorize -> body
    -> HTTP or WebSocket proxy
    every response through one Responder (request id, security headers, RateLimit,
    CORS, RED metrics; errors as problem+json)

With tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT``), a proxied HTTP request is a SERVER
span (joining the caller's ``traceparent`` only from a trusted proxy) with an
``auth`` and a ``rate limit`` span and a CLIENT span for the upstream call, whose
context the upstream receives as ``traceparent``. Off, the hot path pays one test
of :data:`tracing.state.on`; the gateway's own endpoints are not traced (probes would
drown the traces), and of a WebSocket only its upstream handshake is (in the proxy: a
socket lives for hours).

A config reload builds a new stage and swaps it in one assignment; a request keeps
the stage it started with.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from gatehouse.common import tracing
from gatehouse.common.errors import GatehouseError
from gatehouse.common.logging import request_id_var
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.config import GatewayConfig
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.edge.policy import EdgePolicy, ResourceMethods, Revocations, Verifier
from gatehouse.gateway.edge.response import Responder
from gatehouse.gateway.proxy.http import HttpProxy
from gatehouse.gateway.proxy.upstream import UpstreamPool
from gatehouse.gateway.proxy.websocket import LiveSockets, WebSocketProxy
from gatehouse.gateway.rate_limit import RateLimiter, RateLimitStore

log = logging.getLogger("gatehouse.gateway")

_tracing = tracing.state
# An endpoint of the gateway itself: (exchange, send) -> None.
Endpoint = Callable[[Exchange, Send], Awaitable[None]]


class InternalError(GatehouseError):
    """Anything unexpected: a problem+json 500 whose detail says nothing internal."""


class EdgeStage:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        verifier: Verifier,
        store: RateLimitStore,
        fail_open: bool,
        revocations: Revocations,
        upstreams: dict[str, UpstreamPool],
        live: LiveSockets,
        endpoints: dict[str, Endpoint],
        resource_methods: ResourceMethods | None = None,
    ) -> None:
        self.config = config
        self.limiter = RateLimiter(store, config.rate_limits, fail_open=fail_open)
        self.policy = EdgePolicy(config, verifier, self.limiter, revocations, resource_methods)
        self.upstreams = upstreams
        self.http = HttpProxy(upstreams, self.policy.table, config.limits.max_body_bytes)
        self.websocket = WebSocketProxy(upstreams, self.policy, config, live)
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _tracing.on and scope["type"] == "http" and scope["path"] not in self.endpoints:
            await self._traced(scope, receive, send)
            return
        ex = Exchange.parse(scope)
        responder = Responder(ex, send)
        token = request_id_var.set(ex.request_id)
        try:
            await self._handle(ex, receive, responder)
        except GatehouseError as exc:
            await responder.problem(exc)
        except Exception:
            log.exception("unexpected error on %s %s", ex.method, ex.path)
            await responder.problem(InternalError("an unexpected error occurred"))
        finally:
            request_id_var.reset(token)
            if scope["type"] == "http":
                responder.record()

    async def _handle(
        self, ex: Exchange, receive: Receive, responder: Responder, *, traced: bool = False
    ) -> None:
        endpoint = self.endpoints.get(ex.path) if ex.scope["type"] == "http" else None
        if endpoint is not None and ex.method in ("GET", "HEAD"):
            ex.template = ex.path
            await endpoint(ex, responder.send)
            return
        if traced:
            receive = await self.policy.admit_traced(ex, receive)
        else:
            receive = await self.policy.admit(ex, receive)
        if ex.preflight:
            await responder.send({"type": "http.response.start", "status": 204, "headers": []})
            await responder.send({"type": "http.response.body", "body": b""})
        elif ex.scope["type"] == "http":
            await self.http(ex, receive, responder.send, traced=traced)
        else:
            await self.websocket(ex, receive, responder.send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``__call__`` inside a SERVER span, with the stages' and the upstream's spans."""
        ex = Exchange.parse(scope)
        responder = Responder(ex, send)
        addresses = self.policy.addresses
        parent = None
        if addresses.is_trusted(addresses.peer(scope)):
            parent = dict(scope["headers"]).get(b"traceparent", b"").decode("latin-1") or None
        attributes = {"http.request.method": ex.method, "url.path": ex.path}
        with tracing.span(
            "gateway", ex.method, kind=SpanKind.SERVER, parent=parent, attributes=attributes
        ) as span:
            token = request_id_var.set(ex.request_id)
            try:
                await self._handle(ex, receive, responder, traced=True)
            except GatehouseError as exc:
                await responder.problem(exc)
            except Exception as exc:
                span.record_exception(exc)
                log.exception("unexpected error on %s %s", ex.method, ex.path)
                await responder.problem(InternalError("an unexpected error occurred"))
            finally:
                request_id_var.reset(token)
                responder.record()
                _describe(span, ex)


def _describe(span: Span, ex: Exchange) -> None:
    """Name the server span by its route template (never the raw path) and its outcome."""
    status = ex.status or 500
    if ex.route is not None:
        span.update_name(f"{ex.method} {ex.route.prefix}")
        span.set_attribute("http.route", ex.route.prefix)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("client.address", ex.client_ip)
    span.set_attribute("gatehouse.request_id", ex.request_id)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
