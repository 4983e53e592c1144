"""The Redis store against the real Redis: atomic across replicas, exact limits."""

from __future__ import annotations

import asyncio

from gatehouse.gateway.rate_limit_redis import RedisRateLimitStore

from .conftest import config_for

POLICY = {"default": {"limit": 5, "window": 60}, "login": {"limit": 5, "window": 60}}


async def test_two_replicas_share_one_exact_limit(redis_namespace) -> None:
    # A generous socket timeout: 100 concurrent first calls open many connections at once.
    replicas = [
        RedisRateLimitStore(redis_namespace.url, redis_namespace.prefix, timeout=5)
        for _ in range(2)
    ]
    try:
        calls = [replicas[i % 2].hit("user:alice", 25, 60) for i in range(100)]
        decisions = await asyncio.gather(*calls)
    finally:
        for store in replicas:
            await store.close()
    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 25
    assert sorted(d.remaining for d in allowed) == list(range(25))
    refused = [d for d in decisions if not d.allowed]
    assert all(0 < d.retry_after <= 60 / 25 + 0.1 for d in refused)


async def test_the_quota_comes_back_at_the_emission_rate(redis_namespace) -> None:
    store = RedisRateLimitStore(redis_namespace.url, redis_namespace.prefix)
    try:
        first = [await store.hit("k", 2, 0.2) for _ in range(3)]
        await asyncio.sleep(0.12)
        later = await store.hit("k", 2, 0.2)
    finally:
        await store.close()
    assert [d.allowed for d in first] == [True, True, False]
    assert later.allowed


async def test_two_gateway_replicas_hold_the_limit_together(
    start_gateway, issuer, upstream, http, redis_namespace
) -> None:
    config = config_for(upstream.url, rate_limits=POLICY)
    settings = {"redis_url": redis_namespace.url, "rate_limit_prefix": redis_namespace.prefix}
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config, **settings) as one, start_gateway(config, **settings) as two:
        responses = await asyncio.gather(
            *(http.get((one, two)[i % 2] + "/api/v1/authors", headers=headers) for i in range(12))
        )
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 7
    assert len(upstream.seen) == 5
