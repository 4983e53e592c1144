"""The edge stage: one request's whole path through the gateway, built from one config.

    parse the request once (Exchange) -> the gateway's own endpoints
    -> EdgePolicy.admit: route -> identify -> limit -> authorize -> body
    -> HTTP or WebSocket proxy
    every response through one Responder (request id, security headers, RateLimit,
    CORS, RED metrics; errors as problem+json)

A config reload builds a new stage and swaps it in one assignment; a request keeps
the stage it started with.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gatehouse.common.errors import GatehouseError
from gatehouse.common.logging import request_id_var
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.config import GatewayConfig
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.edge.policy import EdgePolicy, Revocations, Verifier
from gatehouse.gateway.edge.response import Responder
from gatehouse.gateway.proxy.http import HttpProxy
from gatehouse.gateway.proxy.upstream import UpstreamPool
from gatehouse.gateway.proxy.websocket import LiveSockets, WebSocketProxy
from gatehouse.gateway.rate_limit import RateLimiter, RateLimitStore

log = logging.getLogger("gatehouse.gateway")

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
    ) -> None:
        self.config = config
        self.limiter = RateLimiter(store, config.rate_limits, fail_open=fail_open)
        self.policy = EdgePolicy(config, verifier, self.limiter, revocations)
        self.upstreams = upstreams
        self.http = HttpProxy(upstreams, self.policy.table, config.limits.max_body_bytes)
        self.websocket = WebSocketProxy(upstreams, self.policy, config, live)
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    async def _handle(self, ex: Exchange, receive: Receive, responder: Responder) -> None:
        endpoint = self.endpoints.get(ex.path) if ex.scope["type"] == "http" else None
        if endpoint is not None and ex.method in ("GET", "HEAD"):
            ex.template = ex.path
            await endpoint(ex, responder.send)
            return
        receive = await self.policy.admit(ex, receive)
        if ex.preflight:
            await responder.send({"type": "http.response.start", "status": 204, "headers": []})
            await responder.send({"type": "http.response.body", "body": b""})
        elif ex.scope["type"] == "http":
            await self.http(ex, receive, responder.send)
        else:
            await self.websocket(ex, receive, responder.send)
