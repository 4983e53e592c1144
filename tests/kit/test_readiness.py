"""Every service answers the one health contract, and is not ready while a dependency is gone.

Dependencies are taken away with a TCP proxy of the test's own between the service
and the shared PostgreSQL / RabbitMQ (never by stopping them), and given back.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.testing import AmqpNamespace, TcpProxy, serve, serve_issuer

from .conftest import AppFactory, build_auth, build_realtime

CHECK_NAMES = {
    "jwks",
    "database",
    "schema",
    "bus",
    "intake",
    "relay_lag",
    "rate_limit_store",
    "accepting",
}
# The authors service adopts the kit's health in its rewrite (#7).
PENDING: dict[str, str] = {}


def assert_health_contract(response: httpx.Response) -> dict[str, Any]:
    """The body of ``/readyz`` as CONTRACTS.md has it; returns the checks."""
    assert response.status_code in (200, 503)
    body = response.json()
    assert set(body) == {"status", "checks"}
    assert body["status"] == ("ready" if response.status_code == 200 else "not_ready")
    for name, check in body["checks"].items():
        assert name in CHECK_NAMES or name.startswith("upstream:"), name
        assert set(check) == {"ok", "detail"}, (name, check)
        assert isinstance(check["ok"], bool)
        assert isinstance(check["detail"], str)
    assert (response.status_code == 200) == all(c["ok"] for c in body["checks"].values())
    checks: dict[str, Any] = body["checks"]
    return checks


async def _eventually_status(
    client: httpx.AsyncClient, url: str, status: int, within: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        response = await client.get(url)
        checks = assert_health_contract(response)
        if response.status_code == status:
            return checks
        assert time.monotonic() < deadline, f"/readyz stayed {response.status_code}: {checks}"
        await asyncio.sleep(0.1)


@pytest.fixture
def service_name(build_service: AppFactory, request: pytest.FixtureRequest) -> str:
    name: str = request.node.callspec.params["build_service"]
    if name in PENDING:
        request.applymarker(pytest.mark.xfail(reason=PENDING[name], strict=True))
    return name


async def test_every_service_answers_the_health_contract(
    build_service: AppFactory, service_name: str
) -> None:
    async with serve_issuer() as issuer:
        app = await build_service(OIDC_ISSUER=issuer.issuer_url)
        async with serve(app) as url, httpx.AsyncClient() as client:
            live = await client.get(f"{url}/healthz")
            checks = await _eventually_status(client, f"{url}/readyz", 200)
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    assert checks


async def test_a_service_without_its_issuers_keys_is_not_ready(tmp_path: Path) -> None:
    with_no_issuer = "http://127.0.0.1:9/realms/gone"
    app = await build_realtime(tmp_path, OIDC_ISSUER=with_no_issuer)
    async with serve(app) as url, httpx.AsyncClient() as client:
        checks = await _eventually_status(client, f"{url}/readyz", 503)
    assert checks["jwks"]["ok"] is False
    assert "127.0.0.1:9" in checks["jwks"]["detail"]


async def _through_an_outage(url: str, proxy: TcpProxy, failing: set[str]) -> None:
    """Ready; not ready with ``failing`` checks while the proxy is cut; ready again."""
    async with httpx.AsyncClient() as client:
        await _eventually_status(client, f"{url}/readyz", 200)
        await proxy.cut()
        checks = await _eventually_status(client, f"{url}/readyz", 503)
        assert {name for name, c in checks.items() if not c["ok"]} >= failing, checks
        proxy.restore()
        await _eventually_status(client, f"{url}/readyz", 200, within=30)


@pytest.mark.services
async def test_realtime_is_not_ready_while_the_broker_is_gone(
    tmp_path: Path, amqp_namespace: AmqpNamespace
) -> None:
    async with TcpProxy.to_url(amqp_namespace.url) as proxy, serve_issuer() as issuer:
        app = await build_realtime(
            tmp_path,
            OIDC_ISSUER=issuer.issuer_url,
            AMQP_URL=proxy.url_for(amqp_namespace.url),
            GATEHOUSE_AMQP_EXCHANGE=amqp_namespace.exchange,
        )
        async with serve(app) as url:
            await _through_an_outage(url, proxy, {"bus", "intake"})


@pytest.mark.services
async def test_auth_is_not_ready_while_its_database_is_gone(
    tmp_path: Path, postgres_url: str
) -> None:
    async with TcpProxy.to_url(postgres_url) as proxy:
        app = await build_auth(tmp_path, GATEHOUSE_AUTH_DATABASE_URL=proxy.url_for(postgres_url))
        async with serve(app) as url:
            await _through_an_outage(url, proxy, {"database", "schema"})


async def test_auth_on_keycloak_is_not_ready_without_keycloaks_keys(tmp_path: Path) -> None:
    app = await build_auth(tmp_path, KEYCLOAK_URL="http://127.0.0.1:9")
    async with serve(app) as url, httpx.AsyncClient() as client:
        checks = await _eventually_status(client, f"{url}/readyz", 503)
    assert set(checks) == {"jwks"}
