"""The async circuit breaker: every awaited call counts, open means no upstream traffic."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gatehouse.gateway import GatewayConfig
from gatehouse.gateway.breaker import AsyncBreaker, BreakerOpen

from .conftest import config_for, dead_url


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response:
    return await http.get(url)


async def _guarded(breaker: AsyncBreaker, http: httpx.AsyncClient, url: str) -> object:
    try:
        return await breaker.call(
            lambda: _get(http, url),
            is_failure=lambda r: r.status_code >= 500,
            counts=lambda exc: isinstance(exc, httpx.TransportError),
        )
    except (BreakerOpen, httpx.TransportError) as exc:
        return exc


async def test_concurrent_5xx_are_all_counted_and_open_the_circuit(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=10, reset_timeout=60)
    results = await asyncio.gather(
        *(_guarded(breaker, http, upstream.url + "/fail") for _ in range(10))
    )
    assert all(isinstance(r, httpx.Response) for r in results)
    assert breaker.state == "open"
    hits = len(upstream.seen)
    refused = await _guarded(breaker, http, upstream.url + "/ok")
    assert isinstance(refused, BreakerOpen)
    assert refused.headers["Retry-After"] in {"59", "60"}
    assert len(upstream.seen) == hits  # not touched


async def test_connect_errors_count_and_4xx_do_not(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=3, reset_timeout=60)
    upstream.fail_status = 404
    await asyncio.gather(*(_guarded(breaker, http, upstream.url + "/fail") for _ in range(5)))
    assert breaker.state == "closed"
    down = dead_url()
    await asyncio.gather(*(_guarded(breaker, http, down) for _ in range(3)))
    assert breaker.state == "open"


async def test_half_open_lets_exactly_one_trial_through(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=1, reset_timeout=0.2)
    await _guarded(breaker, http, upstream.url + "/fail")
    assert breaker.state == "open"
    await asyncio.sleep(0.25)
    results = await asyncio.gather(
        *(_guarded(breaker, http, upstream.url + "/ok") for _ in range(5))
    )
    assert sum(isinstance(r, httpx.Response) for r in results) == 1
    assert sum(isinstance(r, BreakerOpen) for r in results) == 4
    assert breaker.state == "closed"


async def test_cancelled_calls_do_not_count(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=1, reset_timeout=60)
    task = asyncio.create_task(_guarded(breaker, http, upstream.url + "/slow"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.state == "closed"


def with_breaker(config: GatewayConfig, **changes: float) -> GatewayConfig:
    authors = config.upstreams["authors"]
    breaker = authors.breaker.model_copy(update=changes)
    upstreams = {**config.upstreams, "authors": authors.model_copy(update={"breaker": breaker})}
    return config.model_copy(update={"upstreams": upstreams})


async def test_gateway_answers_503_at_once_when_the_circuit_is_open(
    start_gateway, issuer, upstream, http
) -> None:
    upstream.fail_status = 503  # the upstream says it is unwell: that counts
    config = with_breaker(config_for(upstream.url), fail_max=3)
    headers = issuer.bearer(["admin"])
    async with start_gateway(config) as url:
        failures = await asyncio.gather(
            *(http.get(url + "/api/v1/authors/fail", headers=headers) for _ in range(3))
        )
        refused = await http.get(url + "/api/v1/authors", headers=headers)
        other_upstream = await http.post(url + "/auth/token", json={})
    assert [r.status_code for r in failures] == [503, 503, 503]  # upstream's answer passes
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
    assert len([s for s in upstream.seen if s["raw_path"].startswith("/v1/")]) == 3
    assert other_upstream.status_code == 200  # one breaker per upstream


async def test_500s_one_client_provokes_never_open_the_circuit(
    start_gateway, issuer, upstream, http
) -> None:
    """The issue's case: a viewer's requests that 500 upstream must not cut off everyone."""
    config = with_breaker(config_for(upstream.url), fail_max=3)
    mallory = issuer.bearer(["get-authors"], sub="mallory")
    alice = issuer.bearer(["get-authors"], sub="alice")
    async with start_gateway(config) as url:
        provoked = [
            await http.get(url + "/api/v1/authors/fail", headers=mallory) for _ in range(10)
        ]
        others = await http.get(url + "/api/v1/authors", headers=alice)
    assert {r.status_code for r in provoked} == {500}
    assert others.status_code == 200


async def test_the_circuit_opens_when_the_upstream_is_down(start_gateway, issuer, http) -> None:
    config = with_breaker(config_for(dead_url()), fail_max=3, reset_timeout=30)
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config) as url:
        down = [await http.get(url + "/api/v1/authors", headers=headers) for _ in range(3)]
        refused = await http.get(url + "/api/v1/authors", headers=headers)
    assert {r.status_code for r in down} == {502}
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 30


async def test_the_open_period_backs_off_after_a_failed_trial(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=1, reset_timeout=0.1, max_reset_timeout=0.4)
    down = dead_url()
    await _guarded(breaker, http, down)
    assert (breaker.state, breaker.reset_timeout) == ("open", 0.1)
    periods = []
    for _ in range(3):
        await asyncio.sleep(breaker.reset_timeout + 0.05)
        await _guarded(breaker, http, down)  # the half-open trial fails
        periods.append(breaker.reset_timeout)
    assert periods == [0.2, 0.4, 0.4]  # doubles, capped
    await asyncio.sleep(breaker.reset_timeout + 0.05)
    await _guarded(breaker, http, upstream.url + "/ok")
    assert (breaker.state, breaker.reset_timeout) == ("closed", 0.1)  # reset on success


async def test_a_slow_trial_does_not_hold_the_half_open_slot(upstream, http) -> None:
    breaker = AsyncBreaker("t", fail_max=1, reset_timeout=0.1, trial_timeout=0.3)
    await _guarded(breaker, http, dead_url())
    await asyncio.sleep(0.15)
    slow = asyncio.create_task(_guarded(breaker, http, upstream.url + "/slow"))  # takes 2 s
    await asyncio.sleep(0.05)
    assert isinstance(await _guarded(breaker, http, upstream.url + "/ok"), BreakerOpen)
    await asyncio.sleep(0.3)  # the slow trial's lease is over
    after = await _guarded(breaker, http, upstream.url + "/ok")
    assert isinstance(after, httpx.Response)
    assert breaker.state == "closed"
    slow.cancel()
