"""The readiness contract: every check by name, bounded in time, never leaking an error's text."""

from __future__ import annotations

import asyncio

import httpx

from gatehouse.common.health import Check, Health, jwks_check
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TestIssuer


async def _ok() -> Check:
    return Check(True, "fine")


async def test_not_ready_until_started_and_again_while_stopping() -> None:
    health = Health()
    health.add("database", _ok)
    assert (await health.readiness())[0] == 503
    health.started()
    assert await health.readiness() == (
        200,
        {"status": "ready", "checks": {"database": {"ok": True, "detail": "fine"}}},
    )
    health.stopping()
    status, body = await health.readiness()
    assert status == 503
    assert body["checks"]["started"] == {"ok": False, "detail": "stopping"}


async def test_a_hung_check_fails_in_time_and_a_raising_one_hides_its_text() -> None:
    async def hung() -> Check:
        await asyncio.sleep(60)
        return Check(True)

    async def raising() -> Check:
        raise OSError("postgresql://user:s3cret@db/x refused")

    health = Health(timeout=0.2)
    health.add("database", hung)
    health.add("bus", raising)
    health.add("schema", _ok)
    health.started()
    status, body = await asyncio.wait_for(health.readiness(), 2)
    assert status == 503
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {"ok": False, "detail": "no answer within 0.2 s"}
    assert body["checks"]["bus"] == {"ok": False, "detail": "check failed (OSError)"}
    assert body["checks"]["schema"]["ok"] is True


async def test_the_jwks_check_loads_the_keys_when_they_are_missing() -> None:
    issuer = TestIssuer()
    reachable = False

    def handler(request: httpx.Request) -> httpx.Response:
        if not reachable:
            raise httpx.ConnectError("issuer down", request=request)
        return issuer.handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        verifier = JWTVerifier(issuer.issuer_url, "gatehouse", http=http, min_refresh_interval=0)
        await verifier.start()
        check = jwks_check(verifier)
        down = await check()
        assert down.ok is False
        assert "issuer down" in down.detail
        reachable = True
        assert (await check()).ok is True
        assert verifier.ready
