"""The gateway's own endpoints: liveness, readiness with detail, metrics."""

from __future__ import annotations

import httpx
import pytest

from gatehouse.gateway import GatewaySettings, create_app

from .conftest import RedisBehindACut, Upstream, config_for, dead_url, serve


async def test_healthz_and_readyz_when_ready(start_gateway, upstream: Upstream) -> None:
    async with start_gateway(config_for(upstream.url)) as url, httpx.AsyncClient() as http:
        health = await http.get(url + "/healthz")
        ready = await http.get(url + "/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["jwks"]["ok"] is True
    assert checks["rate_limit_store"] == {"ok": True, "detail": "memory"}
    assert checks["upstream:authors"] == {"ok": True, "detail": "breaker closed"}


async def test_readyz_is_503_while_the_issuer_keys_cannot_load(upstream: Upstream, http) -> None:
    settings = GatewaySettings(oidc_issuer=dead_url() + "/realms/x", redis_url=None)
    async with serve(create_app(settings, config=config_for(upstream.url))) as url:
        ready = await http.get(url + "/readyz")
        health = await http.get(url + "/healthz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"
    assert ready.json()["checks"]["jwks"]["ok"] is False
    assert health.status_code == 200  # liveness has no dependencies


@pytest.mark.services
async def test_readyz_fails_when_a_fail_closed_store_is_down(
    start_gateway, upstream, http, redis_behind_a_cut: RedisBehindACut
):
    config = config_for(upstream.url)
    settings = {**redis_behind_a_cut.settings(), "rate_limit_fail_open": False}
    async with start_gateway(config, **settings) as url:
        await redis_behind_a_cut.proxy.cut()
        ready = await http.get(url + "/readyz")
    assert ready.status_code == 503
    store = ready.json()["checks"]["rate_limit_store"]
    assert store == {"ok": False, "detail": "redis unreachable: failing closed"}


async def test_metrics_are_on_the_admin_port_only(start_gateway_app, issuer, upstream, http):
    async with start_gateway_app(config_for(upstream.url)) as (_, url, admin):
        await http.get(url + "/api/v1/authors/42", headers=issuer.bearer(["get-authors"]))
        public = await http.get(url + "/metrics")
        metrics = (await http.get(admin + "/metrics")).text
        admin_ready = await http.get(admin + "/readyz")
    assert public.status_code == 404
    assert admin_ready.status_code == 200
    assert (
        'gatehouse_gateway_upstream_requests_total{route="/api/v1/authors",'
        'status="200",upstream="authors"}'
    ) in metrics
    assert 'route="/api/v1/authors/42"' not in metrics  # raw paths never become labels
    assert 'gatehouse_gateway_breaker_state{upstream="authors"}' in metrics
    assert "gatehouse_gateway_rate_limit_decisions_total" in metrics
    assert 'gatehouse_http_requests_total{method="GET",route="/api/v1/authors"' in metrics
