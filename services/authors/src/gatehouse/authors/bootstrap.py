"""The composition root of the authors service: every resource is built here, once.

``bootstrap`` wires the database, the read cache, the message bus (with its
registry), the event bus, the outbox relay, the RPC server and the sweep of
expired idempotency keys, and registers their clean-up on the caller's exit stack.
Entrypoints (HTTP, RPC, relay) only use what it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse.authors.adapters.cache import AbstractCache, LayeredCache, LocalCache, RedisCache
from gatehouse.authors.adapters.database import (
    check_reachable,
    create_engine,
    read_session_factory,
    write_session_factory,
)
from gatehouse.authors.adapters.orm import start_mappers
from gatehouse.authors.domain.events import Event
from gatehouse.authors.entrypoints.relay import OutboxRelay
from gatehouse.authors.entrypoints.rpc import RpcServer
from gatehouse.authors.migrations import SCRIPTS
from gatehouse.authors.service_layer.cloudevents import TABLE
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.housekeeping import purge_expired_keys
from gatehouse.authors.service_layer.messagebus import MessageBus
from gatehouse.authors.service_layer.registry import routes
from gatehouse.authors.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.bus import open_bus
from gatehouse.common.events import CloudEvent, EventBus
from gatehouse.common.health import Check, CheckFn, jwks_check
from gatehouse.common.requests import TrustedPeers
from gatehouse.common.sql import database_check
from gatehouse.common.tokens import JWTVerifier

log = logging.getLogger("gatehouse.authors")
RELAY_STOP_TIMEOUT = 10.0
RESOURCE_EVENTS = ("gatehouse.author.*", "gatehouse.book.*")
SYSTEM = RequestContext(principal=None, request_id="housekeeping")


@dataclass
class Services:
    """What the entrypoints use; built by :func:`bootstrap`."""

    settings: AuthorsSettings
    engine: AsyncEngine
    reads: async_sessionmaker[AsyncSession]
    writes: async_sessionmaker[AsyncSession]
    verifier: JWTVerifier
    cache: AbstractCache
    events: EventBus
    messagebus: MessageBus = field(init=False)
    trusted: TrustedPeers = field(init=False)
    relay: OutboxRelay | None = None
    relay_task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.messagebus = MessageBus(self.unit_of_work, routes(self.cache))
        self.trusted = TrustedPeers(self.settings.trusted_proxies)

    def unit_of_work(self, context: RequestContext, writes: bool = False) -> SqlAlchemyUnitOfWork:
        sessions = self.writes if writes else self.reads
        return SqlAlchemyUnitOfWork(sessions, context, on_commit=self._committed)

    def relay_running(self) -> bool:
        return self.relay_task is not None and not self.relay_task.done()

    def checks(self) -> dict[str, CheckFn]:
        """Readiness (CONTRACTS "Health"). The bus is left out on purpose: without a
        broker the service still takes writes (the outbox keeps their events), so a
        broker outage must not take every replica out of the load balancer."""
        found: dict[str, CheckFn] = {
            "jwks": jwks_check(self.verifier),
            "database": database_check(self.engine),
            "schema": SCRIPTS.check(self.engine),
        }
        if self.relay is not None:
            found["relay_lag"] = self._relay_check
        return found

    async def _relay_check(self) -> Check:
        relay = self.relay
        if relay is None or not self.relay_running():
            return Check(False, "the outbox relay of this process has stopped")
        return Check(True, relay.describe())

    async def _committed(self, events: Sequence[Event]) -> None:
        if self.relay is not None and events:
            self.relay.wake()
        for event in events:
            mapping = TABLE[type(event)]
            snapshot = None if mapping.action == "deleted" else event.data
            await self.cache.changed(mapping.entity_type, UUID(event.resource_id), snapshot)

    async def on_event(self, event: CloudEvent) -> None:
        """Another replica's change (or ours, again): refresh both cache layers."""
        kind, _, action = event.type.removeprefix("gatehouse.").partition(".")
        if event.subject is None or kind not in ("author", "book"):
            return
        try:
            item = UUID(event.subject)
        except ValueError:
            return
        await self.cache.changed(kind, item, None if action == "deleted" else event.data)


async def bootstrap(
    stack: contextlib.AsyncExitStack,
    settings: AuthorsSettings,
    *,
    bus: EventBus | None = None,
    verifier: JWTVerifier | None = None,
) -> Services:
    """Build the service. ``bus``/``verifier`` given (monolithic mode, tests): used, neither
    started nor closed here; otherwise built from the settings and owned."""
    start_mappers()
    engine = create_engine(settings.sqlalchemy_url(), settings.pool())
    stack.push_async_callback(engine.dispose)
    await check_reachable(engine)
    if verifier is None:
        verifier = JWTVerifier(settings.issuer(), settings.oidc_audience)
        await verifier.start()
        stack.push_async_callback(verifier.close)
    events = bus or await open_bus(settings, stack)
    services = Services(
        settings,
        engine,
        read_session_factory(engine),
        write_session_factory(engine),
        verifier,
        await _cache(stack, settings),
        events,
    )
    for pattern in RESOURCE_EVENTS:
        subscription = await events.subscribe(pattern, services.on_event)
        stack.push_async_callback(subscription.cancel)
    if settings.rpc:
        rpc = await RpcServer(services.messagebus, verifier).serve(events)
        stack.push_async_callback(rpc.cancel)
    if settings.run_relay:
        await _start_relay(stack, services)
    sweeper = asyncio.create_task(_sweep_keys(services), name="idempotency-key-sweep")
    stack.push_async_callback(_cancel, sweeper)
    return services


async def _sweep_keys(services: Services) -> None:
    interval = services.settings.key_sweep_interval
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await purge_expired_keys(services.unit_of_work(SYSTEM, writes=True))
        except Exception as exc:  # the database may be away: the next round tries again
            log.warning("could not purge expired idempotency keys: %r", exc)
        else:
            if removed:
                log.info("purged %d expired idempotency keys", removed)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _cache(stack: contextlib.AsyncExitStack, settings: AuthorsSettings) -> AbstractCache:
    local = LocalCache(settings.cache_size, settings.cache_ttl)
    if not settings.redis_url:
        return local
    import redis.asyncio as aioredis

    client: Any = aioredis.from_url(
        settings.redis_url, socket_timeout=0.25, socket_connect_timeout=0.25
    )
    stack.push_async_callback(client.aclose)
    shared = RedisCache(client, prefix=settings.cache_prefix, ttl=settings.cache_redis_ttl)
    return LayeredCache(local, shared)


async def _start_relay(stack: contextlib.AsyncExitStack, services: Services) -> None:
    stop = asyncio.Event()
    services.relay = OutboxRelay(services.engine, services.events)
    services.relay_task = asyncio.create_task(services.relay.run(stop), name="outbox-relay")
    stack.push_async_callback(_stop_relay, stop, services.relay_task)


async def _stop_relay(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    try:
        async with asyncio.timeout(RELAY_STOP_TIMEOUT):
            await task
    except TimeoutError:
        log.warning("outbox relay did not stop within %.0f s; cancelled", RELAY_STOP_TIMEOUT)
