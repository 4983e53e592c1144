"""Rate limits through the gateway (in-memory store) and the client address they key on."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from prometheus_client import REGISTRY

from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.rate_limit import MemoryRateLimitStore

from .conftest import RedisBehindACut, config_for

POLICY = {"default": {"limit": 3, "window": 60}, "login": {"limit": 2, "window": 60}}


async def test_limit_holds_with_draft_11_headers(start_gateway, issuer, upstream, http) -> None:
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config_for(upstream.url, rate_limits=POLICY)) as url:
        responses = [await http.get(url + "/api/v1/authors", headers=headers) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert re.fullmatch(r'"default";r=2;t=\d+', responses[0].headers["ratelimit"])
    assert re.fullmatch(r'"default";r=0;t=\d+', responses[2].headers["ratelimit"])
    limited = responses[3]
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    assert limited.headers["ratelimit-policy"] == '"default";q=3;w=60'
    assert len(upstream.seen) == 3


async def test_users_have_separate_quotas(start_gateway, issuer, upstream, http) -> None:
    alice = issuer.bearer(["get-authors"], sub="alice")
    bob = issuer.bearer(["get-authors"], sub="bob")
    async with start_gateway(config_for(upstream.url, rate_limits=POLICY)) as url:
        for _ in range(3):
            await http.get(url + "/api/v1/authors", headers=alice)
        alice_again = await http.get(url + "/api/v1/authors", headers=alice)
        bob_first = await http.get(url + "/api/v1/authors", headers=bob)
    assert alice_again.status_code == 429
    assert bob_first.status_code == 200


async def test_anonymous_and_refused_requests_are_limited_by_ip(start_gateway, upstream, http):
    async with start_gateway(config_for(upstream.url, rate_limits=POLICY)) as url:
        logins = [await http.post(url + "/auth/token", json={}) for _ in range(3)]
        guesses = [await http.get(url + "/api/v1/authors") for _ in range(4)]
    assert [r.status_code for r in logins] == [200, 200, 429]
    assert [r.status_code for r in guesses] == [401, 401, 401, 429]


@pytest.mark.services
async def test_store_down_fails_open_and_is_counted(
    start_gateway, issuer, upstream, http, redis_behind_a_cut: RedisBehindACut
):
    before = _store_errors()
    settings = redis_behind_a_cut.settings()
    async with start_gateway(config_for(upstream.url), **settings) as url:
        await redis_behind_a_cut.proxy.cut()
        response = await http.get(url + "/api/v1/authors", headers=issuer.bearer(["admin"]))
    assert response.status_code == 200
    assert "ratelimit" not in response.headers
    assert _store_errors() == before + 1


@pytest.mark.services
async def test_store_down_fails_closed_when_configured(
    start_gateway, issuer, upstream, http, redis_behind_a_cut: RedisBehindACut
):
    config = config_for(upstream.url)
    settings = {**redis_behind_a_cut.settings(), "rate_limit_fail_open": False}
    async with start_gateway(config, **settings) as url:
        await redis_behind_a_cut.proxy.cut()
        response = await http.get(url + "/api/v1/authors", headers=issuer.bearer(["admin"]))
    assert response.status_code == 503
    assert upstream.seen == []


def _store_errors() -> float:
    value = REGISTRY.get_sample_value(
        "gatehouse_gateway_rate_limit_store_errors_total", {"store": "redis"}
    )
    return value or 0.0


async def test_memory_store_holds_the_limit_under_concurrency() -> None:
    store = MemoryRateLimitStore()
    decisions = await asyncio.gather(*(store.hit("k", 10, 60) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10


def _chain(forwarded: str | None) -> list[bytes]:
    return [a.strip().encode() for a in (forwarded or "").split(",") if a.strip()]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.7", "1.2.3.4", "198.51.100.7"),  # untrusted peer: header ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client's own entry is not believed
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", "1.2.3.4"),  # right-most untrusted wins
        ("10.0.0.5", "10.0.0.8, 10.0.0.9", "10.0.0.8"),
    ],
)
def test_client_address_trusts_only_configured_proxies(peer, forwarded, client) -> None:
    addresses = ClientAddress(["10.0.0.0/8"])
    scope = {"type": "http", "client": (peer, 5000)}
    assert addresses.client_ip(scope, _chain(forwarded)) == client


async def test_forwarded_for_spoofing_does_not_dodge_the_limit(start_gateway, upstream) -> None:
    config = config_for(upstream.url, rate_limits=POLICY)
    async with start_gateway(config) as url, httpx.AsyncClient() as http:
        codes = [
            (
                await http.post(url + "/auth/token", headers={"X-Forwarded-For": f"9.9.9.{i}"})
            ).status_code
            for i in range(3)
        ]
    assert codes == [200, 200, 429]
