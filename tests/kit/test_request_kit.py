"""What every service does with each request, as its operator and its clients see it.

* An unexpected exception: a problem+json 500 carrying the request id and never the
  exception's text; one log line for it, carrying the request id; nothing printed
  by the server a second time.
* A client that goes away mid-body: one INFO line, no ERROR, no traceback.
* One access log line per request: method, route template, status, duration, user,
  request id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

from gatehouse.testing import LogLines, TestIssuer, serve, serve_issuer

from .conftest import AppFactory, build_authors

SECRET = "s3cret-internal-detail"


def add_test_routes(app: FastAPI) -> None:
    @app.get("/kit-test/boom/{n}")
    async def boom(n: int) -> None:
        raise RuntimeError(SECRET)

    @app.post("/kit-test/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}


async def test_an_unexpected_exception_is_a_500_problem_with_the_request_id(
    build_service: AppFactory, log_lines: LogLines
) -> None:
    app = await build_service()
    add_test_routes(app)
    async with serve(app) as url, httpx.AsyncClient() as client:
        response = await client.get(f"{url}/kit-test/boom/1")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    rid = response.headers["x-request-id"]
    assert body["code"] == "internal_error"
    assert body["request_id"] == rid
    assert SECRET not in response.text
    errors = log_lines.at_least("ERROR")
    assert len(errors) == 1, errors  # once: not again by uvicorn
    assert errors[0]["request_id"] == rid
    assert SECRET in errors[0]["exc"]  # the operator sees it; the client does not


async def test_a_client_that_goes_away_mid_body_is_one_info_line(
    build_service: AppFactory, log_lines: LogLines
) -> None:
    app = await build_service()
    add_test_routes(app)
    async with serve(app) as url:
        host, port = url.removeprefix("http://").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /kit-test/upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10
        )
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        await asyncio.sleep(0.3)
    assert log_lines.at_least("ERROR") == []
    gone = [line for line in log_lines.lines if "went away" in line["message"]]
    assert len(gone) == 1
    assert gone[0]["level"] == "INFO"
    assert "exc" not in gone[0]


async def test_one_access_line_per_request_with_the_route_template(
    build_service: AppFactory, log_lines: LogLines
) -> None:
    app = await build_service()
    add_test_routes(app)
    async with serve(app) as url, httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/kit-test/upload", content=b"abc", headers={"X-Request-ID": "trusted-rid-1"}
        )
    assert response.status_code == 200
    (line,) = log_lines.of("gatehouse.access")
    assert line["method"] == "POST"
    assert line["route"] == "/kit-test/upload"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["request_id"] == "trusted-rid-1"  # loopback is a trusted proxy by default
    assert line["level"] == "INFO"


async def test_the_request_id_of_an_untrusted_peer_is_replaced(
    build_service: AppFactory, log_lines: LogLines
) -> None:
    app = await build_service(GATEHOUSE_TRUSTED_PROXIES="10.0.0.0/8")
    add_test_routes(app)
    async with serve(app) as url, httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/kit-test/upload", content=b"", headers={"X-Request-ID": "chosen-by-client"}
        )
    assert response.headers["x-request-id"] != "chosen-by-client"
    (line,) = log_lines.of("gatehouse.access")
    assert line["request_id"] == response.headers["x-request-id"]


async def test_the_access_log_can_be_turned_off(
    build_service: AppFactory, log_lines: LogLines
) -> None:
    app = await build_service(GATEHOUSE_ACCESS_LOG="false")
    add_test_routes(app)
    async with serve(app) as url, httpx.AsyncClient() as client:
        await client.post(f"{url}/kit-test/upload", content=b"")
    assert log_lines.of("gatehouse.access") == []


async def test_the_access_line_names_the_user_the_token_verified(
    tmp_path: Path, log_lines: LogLines
) -> None:
    async with serve_issuer(TestIssuer(roles=["get-authors"])) as issuer:
        app = await build_authors(tmp_path, OIDC_ISSUER=issuer.issuer_url)
        async with serve(app) as url, httpx.AsyncClient() as client:
            headers = issuer.bearer(preferred_username="ursula")
            response = await client.get(f"{url}/v1/authors", headers=headers)
    assert response.status_code == 200
    (line,) = [x for x in log_lines.of("gatehouse.access") if x["route"] == "/v1/authors"]
    assert line["user"] == "ursula"
    assert line["message"].startswith("GET /v1/authors 200 ")
