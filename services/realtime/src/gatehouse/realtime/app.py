"""The composition root of the realtime service: ``create_app(settings, bus=...)``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request

from gatehouse.common import tracing
from gatehouse.common.bus import open_bus
from gatehouse.common.events import EventBus
from gatehouse.common.health import Health, bus_check, health_router, jwks_check
from gatehouse.common.middleware import ServiceMiddleware
from gatehouse.common.problem_handlers import install_problem_handlers
from gatehouse.common.tokens import JWTVerifier
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.realtime.asyncapi import asyncapi_document
from gatehouse.realtime.endpoint import Runtime, serve_websocket
from gatehouse.realtime.hub import SERVICE_RESTART
from gatehouse.realtime.intake import follow_bus, intake_check
from gatehouse.realtime.registry import Registry, discover
from gatehouse.realtime.settings import RealtimeSettings


class RealtimeApp(FastAPI):
    """FastAPI for the HTTP routes; a socket at ``/ws`` is served before FastAPI's stack.

    Each layer of that stack (error and exception middleware, FastAPI's own, ours) is a
    coroutine frame held for the life of every socket, and a socket needs none of them
    (memory per idle socket is a budget, DESIGN §11).
    """

    def __init__(self, runtime: Runtime, **options: Any) -> None:
        super().__init__(**options)
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            await serve_websocket(scope, receive, send, self.runtime)
        else:
            await super().__call__(scope, receive, send)


WS_PATH = "/ws"


def create_app(
    settings: RealtimeSettings, *, bus: EventBus | None = None, methods: Registry | None = None
) -> FastAPI:
    """The realtime app. A passed ``bus`` (monolithic mode) is used but never started or
    closed; otherwise the app owns one: RabbitMQ when ``AMQP_URL`` is set, else in-memory.
    ``methods`` are the ``call`` methods (default: every module of
    :mod:`gatehouse.realtime.methods`)."""
    methods = methods if methods is not None else discover()
    runtime = Runtime.of(settings, methods)
    health = Health()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            events = bus if bus is not None else await open_bus(settings, stack)
            verifier = JWTVerifier(settings.issuer(), settings.oidc_audience)
            await verifier.start()
            stack.push_async_callback(verifier.close)
            runtime.verifier = verifier
            runtime.calls.requester = events
            subscription = await stack.enter_async_context(follow_bus(runtime.intake, events))
            stack.push_async_callback(_drain, runtime, health)
            health.add("jwks", jwks_check(verifier))
            health.add("bus", bus_check(events))
            health.add("intake", intake_check(runtime.intake, subscription))
            health.add_flag("accepting", lambda: runtime.accepting, "shutting down")
            health.started()
            yield

    app = RealtimeApp(
        runtime,
        title="Gatehouse realtime",
        version="1.0.0",
        lifespan=lifespan,
        description="WebSocket subscriptions and live events; the protocol is at /asyncapi.json.",
    )
    install_problem_handlers(app)
    app.include_router(health_router(lambda: health))
    _add_routes(app, runtime)
    app.add_middleware(
        ServiceMiddleware,
        service="realtime",
        trusted_proxies=settings.trusted_proxies,
        access_log=settings.access_log,
    )
    tracing.instrument_fastapi(app, "realtime", settings.trusted_proxies, exclude=["/ws"])
    return app


async def _drain(runtime: Runtime, health: Health) -> None:
    """Shutdown: refuse new sockets, close the open ones with 1012 so they reconnect."""
    health.stopping()
    runtime.accepting = False
    await runtime.hub.close_all(SERVICE_RESTART, "server restarting")


def _add_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/asyncapi.json", tags=["docs"])
    async def asyncapi(request: Request) -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the WebSocket protocol at ``/ws``."""
        return asyncapi_document(runtime.calls.registry, request.url.netloc)
