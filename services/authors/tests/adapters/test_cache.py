"""The layered read cache: newer versions win, deletions stay deleted, Redis faults are
misses; and two replicas sharing a database read each other's writes through events."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from gatehouse.authors.adapters.cache import LayeredCache, LocalCache, RedisCache
from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import EventBus, InMemoryEventBus
from gatehouse.common.tokens import JWTVerifier

ID = uuid.uuid4()
Auth = Callable[..., dict[str, str]]
# How soon another replica serves a change (docs/architecture.md): the relay publishes
# within milliseconds of the commit; this leaves room for a loaded 2-core machine.
EVENT_BOUND = 5.0


def snap(version: int, name: str = "A") -> dict[str, Any]:
    return {"id": str(ID), "name": name, "version": version}


async def test_the_local_layer_keeps_the_newest_version_and_tombstones() -> None:
    cache = LocalCache(size=10, ttl=60)

    await cache.put("author", ID, snap(2))
    await cache.put("author", ID, snap(1))  # a reader that raced a writer
    assert await cache.get("author", ID) == snap(2)
    await cache.changed("author", ID, None)  # deleted
    await cache.put("author", ID, snap(2))
    assert await cache.get("author", ID) is None


async def test_the_local_layer_is_bounded_and_expires() -> None:
    cache = LocalCache(size=2, ttl=0.05)
    ids = [uuid.uuid4() for _ in range(3)]
    for item in ids:
        await cache.put("author", item, {"version": 1})

    assert await cache.get("author", ids[0]) is None  # evicted (LRU)
    await asyncio.sleep(0.1)
    assert await cache.get("author", ids[2]) is None  # expired
    await cache.put("author", ids[2], {"version": 1})  # and can be refilled
    assert await cache.get("author", ids[2]) == {"version": 1}


@pytest.fixture
async def redis_cache(redis_namespace: Any) -> AsyncIterator[RedisCache]:
    client = aioredis.from_url(redis_namespace.url)
    yield RedisCache(client, prefix=redis_namespace.prefix, ttl=30)
    await client.aclose()


@pytest.mark.services
async def test_redis_sets_only_newer_versions_and_keeps_tombstones(
    redis_cache: RedisCache,
) -> None:
    await redis_cache.put("book", ID, snap(3))
    await redis_cache.put("book", ID, snap(2))
    assert await redis_cache.get("book", ID) == snap(3)
    await redis_cache.changed("book", ID, None)
    await redis_cache.put("book", ID, snap(3))
    assert await redis_cache.get("book", ID) is None


@pytest.mark.services
async def test_a_local_miss_is_filled_from_redis(redis_cache: RedisCache) -> None:
    await redis_cache.put("author", ID, snap(4))
    local = LocalCache(ttl=60)
    layered = LayeredCache(local, redis_cache)

    assert await layered.get("author", ID) == snap(4)
    assert await local.get("author", ID) == snap(4)


async def test_a_redis_fault_is_a_miss_not_an_error() -> None:
    unreachable = aioredis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    cache = LayeredCache(LocalCache(), RedisCache(unreachable))
    try:
        await cache.put("author", ID, snap(1))  # the local layer still takes it
        assert await RedisCache(unreachable).get("author", ID) is None
        assert await cache.get("author", ID) == snap(1)
    finally:
        await unreachable.aclose()


@pytest.fixture
def replicas_settings(database_url: str, tmp_path: Path) -> AuthorsSettings:
    # A long local TTL: only the events can make the other replica see a change.
    return AuthorsSettings(
        database_url=database_url,
        data_dir=tmp_path,
        oidc_issuer="http://issuer.test/realms/gatehouse",
        cache_ttl=3600,
    )


async def test_two_replicas_read_each_others_writes_through_events(
    replicas_settings: AuthorsSettings, verifier: JWTVerifier, auth: Auth
) -> None:
    bus: EventBus = InMemoryEventBus()
    first = create_app(replicas_settings, bus=bus, verifier=verifier)
    second = create_app(
        replicas_settings.model_copy(update={"run_relay": False, "rpc": False}),
        bus=bus,
        verifier=verifier,
    )
    async with _client(first) as a, _client(second) as b:
        created = (await a.post("/v1/authors", json={"name": "X"}, headers=auth("admin"))).json()
        url = f"/v1/authors/{created['id']}"
        assert (await b.get(url, headers=auth("admin"))).json()["version"] == 1  # cached in b

        await a.patch(url, json={"bio": "new"}, headers=auth("admin"))
        await _eventually(lambda: _bio(b, url, auth), "new")
        await a.delete(url, headers=auth("admin"))
        await _eventually(lambda: _status(b, url, auth), 404)


@pytest.mark.services
async def test_two_replicas_on_rabbitmq_and_redis_serve_each_others_writes(
    postgres_database_url: str,
    amqp_namespace: Any,
    redis_namespace: Any,
    tmp_path: Path,
    verifier: JWTVerifier,
    auth: Auth,
) -> None:
    """Two processes' worth of replicas: each its own AMQP connection, one Redis layer,
    both relays competing for the outbox. The local TTL is an hour, so only the events
    over the broker can refresh the replica that did not write."""
    settings = AuthorsSettings(
        database_url=postgres_database_url,
        data_dir=tmp_path,
        oidc_issuer="http://issuer.test/realms/gatehouse",
        amqp_url=amqp_namespace.url,
        amqp_exchange=amqp_namespace.exchange,
        redis_url=redis_namespace.url,
        cache_prefix=redis_namespace.prefix,
        cache_ttl=3600,
        rpc=False,
    )
    first = create_app(settings, verifier=verifier)
    second = create_app(settings, verifier=verifier)
    async with _client(first) as a, _client(second) as b:
        created = (await a.post("/v1/authors", json={"name": "X"}, headers=auth("admin"))).json()
        url = f"/v1/authors/{created['id']}"
        assert (await b.get(url, headers=auth("admin"))).json()["version"] == 1  # cached in b

        await b.patch(url, json={"bio": "from b"}, headers=auth("admin"))
        await _eventually(lambda: _bio(a, url, auth), "from b", within=EVENT_BOUND)
        await a.patch(url, json={"bio": "from a"}, headers=auth("admin"))
        await _eventually(lambda: _bio(b, url, auth), "from a", within=EVENT_BOUND)
        await a.delete(url, headers=auth("admin"))
        await _eventually(lambda: _status(b, url, auth), 404, within=EVENT_BOUND)


def _client(app: FastAPI) -> Any:
    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[httpx.AsyncClient]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
                yield client

    return running()


async def _bio(client: httpx.AsyncClient, url: str, auth: Auth) -> Any:
    return (await client.get(url, headers=auth("admin"))).json().get("bio")


async def _status(client: httpx.AsyncClient, url: str, auth: Auth) -> Any:
    return (await client.get(url, headers=auth("admin"))).status_code


async def _eventually(read: Callable[[], Any], expected: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if await read() == expected:
                return
            await asyncio.sleep(0.02)
