"""The composition root of the authors service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from gatehouse.authors.adapters.database import check_reachable, create_engine, session_factory
from gatehouse.authors.adapters.eventbus import build_bus
from gatehouse.authors.adapters.http import authors, health
from gatehouse.authors.adapters.http.dependencies import Resources
from gatehouse.authors.adapters.orm import start_mappers
from gatehouse.authors.relay import OutboxRelay
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import EventBus
from gatehouse.common.middleware import ServiceMiddleware
from gatehouse.common.problem_handlers import install_problem_handlers
from gatehouse.common.tokens import JWTVerifier

log = logging.getLogger("gatehouse.authors")
RELAY_STOP_TIMEOUT = 10.0


def create_app(
    settings: AuthorsSettings,
    *,
    bus: EventBus | None = None,
    verifier: JWTVerifier | None = None,
) -> FastAPI:
    """Build the authors app. Resources are created in its lifespan, not here.

    ``bus`` / ``verifier``: when given (monolithic mode, tests), the app uses them and
    neither starts nor closes them; otherwise it builds and owns its own.
    The database must already be migrated (:func:`gatehouse.authors.migrations.migrate`).
    """
    start_mappers()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            app.state.resources = await _start(stack, settings, bus, verifier)
            yield

    app = FastAPI(
        title="Gatehouse authors",
        version="1.0.0",
        description="Authors, with every change published as a CloudEvent (outbox).",
        lifespan=lifespan,
    )
    app.include_router(authors.router)
    app.include_router(health.router)
    install_problem_handlers(app)
    app.add_middleware(
        ServiceMiddleware,
        service="authors",
        trusted_proxies=settings.trusted_proxies,
        access_log=settings.access_log,
    )
    return app


async def _start(
    stack: contextlib.AsyncExitStack,
    settings: AuthorsSettings,
    bus: EventBus | None,
    verifier: JWTVerifier | None,
) -> Resources:
    engine = create_engine(settings.sqlalchemy_url())
    stack.push_async_callback(engine.dispose)
    await check_reachable(engine)
    if verifier is None:
        verifier = JWTVerifier(settings.issuer(), settings.oidc_audience)
        await verifier.start()
        stack.push_async_callback(verifier.close)
    resources = Resources(engine, session_factory(engine), verifier)
    if settings.run_relay:
        await _start_relay(stack, resources, bus or await _own_bus(stack, settings))
    return resources


async def _own_bus(stack: contextlib.AsyncExitStack, settings: AuthorsSettings) -> EventBus:
    bus = build_bus(settings)
    await bus.start()
    stack.push_async_callback(bus.close)
    return bus


async def _start_relay(
    stack: contextlib.AsyncExitStack, resources: Resources, bus: EventBus
) -> None:
    stop = asyncio.Event()
    resources.relay = OutboxRelay(resources.engine, bus)
    resources.relay_task = asyncio.create_task(resources.relay.run(stop), name="outbox-relay")
    stack.push_async_callback(_stop_relay, stop, resources.relay_task)


async def _stop_relay(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    try:
        async with asyncio.timeout(RELAY_STOP_TIMEOUT):
            await task
    except TimeoutError:
        log.warning("outbox relay did not stop within %.0f s; cancelled", RELAY_STOP_TIMEOUT)
