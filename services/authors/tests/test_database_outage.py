"""A database outage is a 503 with Retry-After, on a connection that stays open, and it
ends when the database is back (issue #10: it was a 500 ``internal_error`` and the
gateway saw dropped connections)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TcpProxy, serve

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]
Auth = Callable[..., dict[str, str]]
ISSUER = "http://issuer.test/realms/gatehouse"


async def test_a_database_cut_is_503_with_retry_after_until_it_is_back(
    shared_postgres_url: str, verifier: JWTVerifier, auth: Auth, tmp_path: Path
) -> None:
    async with TcpProxy.to_url(shared_postgres_url) as proxy:
        settings = AuthorsSettings(
            database_url=proxy.url_for(shared_postgres_url),
            data_dir=tmp_path,
            oidc_issuer=ISSUER,
            run_relay=False,
        )
        app = create_app(settings, verifier=verifier)
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
            assert (await client.get("/v1/authors", headers=auth("admin"))).status_code == 200

            await proxy.cut()
            connects: list[str] = []

            async def trace(name: str, _info: object) -> None:
                if name == "connection.connect_tcp.complete":
                    connects.append(name)

            seen = {"trace": trace}
            during = [
                await client.get("/v1/authors", headers=auth("admin"), extensions=seen),
                await client.post(
                    "/v1/authors", json={"name": "X"}, headers=auth("admin"), extensions=seen
                ),
                await client.get("/v1/audit", headers=auth("admin"), extensions=seen),
            ]
            ready = await client.get("/readyz")

            proxy.restore()
            after = await _first_success(client, auth)

    assert connects == []  # each answered on the first keep-alive connection: none dropped
    for response in during:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unavailable"
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert after < 5.0


async def _first_success(client: httpx.AsyncClient, auth: Auth) -> float:
    """Seconds until the API answers 200 again."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(200):
        if (await client.get("/v1/authors", headers=auth("admin"))).status_code == 200:
            break
        await asyncio.sleep(0.1)
    return loop.time() - start
