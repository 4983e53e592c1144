"""The composition root: ``create_app(settings)`` returns the gateway's ASGI app.

Configuration is read and validated here, at start-up; the verifier, the HTTP
clients and the rate-limit store are created in the ASGI lifespan and the
pipeline is assembled from them:

    request id -> security headers -> RED metrics -> problem+json -> /healthz /readyz /metrics
    -> routing (path tricks 400, 404/405) -> authentication -> rate limit
    -> authorization (401/403) -> body limit (413) -> HTTP or WebSocket proxy
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gatehouse.common.errors import ServiceUnavailable
from gatehouse.common.metrics import REDMiddleware
from gatehouse.common.problem import send_problem
from gatehouse.common.requests import RequestIdMiddleware
from gatehouse.common.tokens import JWTVerifier
from gatehouse.common.types import ASGIApp, Receive, Scope, Send
from gatehouse.gateway.auth import AuthenticationMiddleware, AuthorizationMiddleware
from gatehouse.gateway.body_limit import BodyLimitMiddleware
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.config import GatewayConfig, load_config
from gatehouse.gateway.ops import OpsMiddleware, Readiness
from gatehouse.gateway.problems import ProblemMiddleware, reject_websocket
from gatehouse.gateway.proxy import HttpProxy
from gatehouse.gateway.rate_limit import MemoryRateLimitStore, RateLimiter, RateLimitStore
from gatehouse.gateway.rate_limit_middleware import RateLimitMiddleware
from gatehouse.gateway.rate_limit_redis import RedisRateLimitStore
from gatehouse.gateway.routing import RouteTable, RoutingMiddleware
from gatehouse.gateway.security_headers import SecurityHeadersMiddleware
from gatehouse.gateway.settings import GatewaySettings
from gatehouse.gateway.upstreams import UpstreamClient, close_upstreams, open_upstreams
from gatehouse.gateway.websocket_proxy import WebSocketProxy

log = logging.getLogger("gatehouse.gateway")


def create_app(settings: GatewaySettings, *, config: GatewayConfig | None = None) -> Gateway:
    """The gateway ASGI app; ``config`` defaults to the file the settings name."""
    if config is None:
        config = load_config(settings.config_path, settings.upstream_overrides())
    return Gateway(settings, config)


@dataclass
class Resources:
    verifier: JWTVerifier
    store: RateLimitStore
    upstreams: dict[str, UpstreamClient]

    async def close(self) -> None:
        await close_upstreams(self.upstreams)
        await self.store.close()
        await self.verifier.close()


class Gateway:
    """Handles the lifespan itself and runs the pipeline it built at start-up."""

    def __init__(self, settings: GatewaySettings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        self.resources: Resources | None = None
        self._pipeline: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self._pipeline is not None:
            await self._pipeline(scope, receive, send)
        else:
            await _not_started(scope, send)

    async def startup(self) -> None:
        self.resources = await open_resources(self.settings, self.config)
        self._pipeline = build_pipeline(self.config, self.settings, self.resources)
        log.info(
            "gateway ready: %d routes, upstreams %s",
            len(self.config.routes),
            {n: u.url for n, u in self.config.upstreams.items()},
        )

    async def shutdown(self) -> None:
        self._pipeline = None
        if self.resources is not None:
            await self.resources.close()
            self.resources = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def open_resources(settings: GatewaySettings, config: GatewayConfig) -> Resources:
    verifier = JWTVerifier(settings.issuer(), settings.oidc_audience)
    await verifier.start()
    store: RateLimitStore
    if settings.redis_url:
        store = RedisRateLimitStore(settings.redis_url, settings.rate_limit_prefix)
    else:
        store = MemoryRateLimitStore()
    return Resources(verifier, store, open_upstreams(config.upstreams))


def build_pipeline(config: GatewayConfig, settings: GatewaySettings, res: Resources) -> ASGIApp:
    addresses = ClientAddress(config.trusted_proxies)
    limiter = RateLimiter(res.store, config.rate_limits, fail_open=settings.rate_limit_fail_open)
    app: ASGIApp = _Dispatch(
        HttpProxy(res.upstreams, addresses),
        WebSocketProxy(res.upstreams, addresses, config.limits.max_ws_frame_bytes),
    )
    app = BodyLimitMiddleware(app, config.limits.max_body_bytes)
    app = AuthorizationMiddleware(app)
    app = RateLimitMiddleware(app, limiter, addresses)
    app = AuthenticationMiddleware(app, res.verifier)
    app = RoutingMiddleware(app, RouteTable(config.routes))
    app = OpsMiddleware(app, Readiness(res.verifier, limiter, res.upstreams))
    app = ProblemMiddleware(app)
    app = REDMiddleware(app, "gateway")
    app = SecurityHeadersMiddleware(app)
    return RequestIdMiddleware(app)


class _Dispatch:
    def __init__(self, http: ASGIApp, websocket: ASGIApp) -> None:
        self.http = http
        self.websocket = websocket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.websocket(scope, receive, send)


async def _not_started(scope: Scope, send: Send) -> None:
    error = ServiceUnavailable("the gateway has not started (ASGI lifespan not run)", retry_after=1)
    if scope["type"] == "http":
        await send_problem(send, error, scope.get("path"))
    elif scope["type"] == "websocket":
        await reject_websocket(scope, send, error)
