"""Routing at the edge: path tricks, unknown paths and methods, raw path kept upstream."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from .conftest import config_for


async def raw_request(url: str, target: str, method: str = "GET", headers: str = "") -> bytes:
    """Send a request line exactly as given (HTTP clients would normalise the path)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = f"{method} {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{headers}\r\n"
    writer.write(head.encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response


@pytest.mark.parametrize(
    "target",
    [
        "/api/v1/authors/../../admin",
        "/api/v1/authors/%2e%2e/secret",
        "/api/v1/authors/./1",
        "/api/v1/authors/a%2Fb",
        "/api/v1/authors/a%5cb",
        "/api/v1/authors/a%00b",
    ],
)
async def test_path_tricks_are_refused_with_400(start_gateway, upstream, target: str) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await raw_request(url, target)
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"application/problem+json" in response
    assert upstream.seen == []


async def test_unknown_path_is_404_problem(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + "/api/v1/authorsx")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_method_not_in_route_is_405_with_allow(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + "/auth/token")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_websocket_route_over_plain_http_is_426(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + "/ws")
    assert response.status_code == 426


async def test_raw_path_and_query_reach_the_upstream_with_prefix_stripped(
    start_gateway, issuer, upstream
) -> None:
    token = issuer.token(["get-authors"])
    async with start_gateway(config_for(upstream.url)) as url:
        response = await raw_request(
            url,
            "/api/v1/authors/a%20b?name=x%26y&z=1",
            headers=f"Authorization: Bearer {token}\r\n",
        )
    assert response.startswith(b"HTTP/1.1 200 ")
    assert upstream.seen[0]["raw_path"] == "/v1/authors/a%20b"
    assert upstream.seen[0]["query"] == "name=x%26y&z=1"


async def test_auth_paths_are_kept(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.post(url + "/auth/token", json={"username": "a", "password": "b"})
    assert response.status_code == 200
    assert upstream.seen[0]["raw_path"] == "/auth/token"
    assert "password" in upstream.seen[0]["body"]
