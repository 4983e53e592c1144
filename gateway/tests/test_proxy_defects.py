"""What a client sees through the gateway is the public API, never the upstream's internals."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from gatehouse.gateway.rate_limit import MemoryRateLimitStore
from gatehouse.testing import bind_loopback

from .conftest import config_for

AUTHORS = "/api/v1/authors"
POLICY = {"default": {"limit": 50, "window": 60}, "login": {"limit": 50, "window": 60}}


async def test_identity_headers_are_stripped_and_the_verified_one_sent(
    start_gateway, issuer, upstream, http
) -> None:
    spoofed = {
        "X-User-Id": "admin",
        "X-Roles": "admin",
        "X-Forwarded-User": "admin",
        "X-Auth-Request-User": "admin",
        "X-Auth-Request-Email": "admin@example.com",
        "Forwarded": "for=1.2.3.4;by=evil",
        "X-Real-IP": "1.2.3.4",
        "X-Gatehouse-Roles": "admin",
        "X-Gatehouse-User-Id": "admin",
    }
    headers = {**issuer.bearer(["get-authors"], sub="alice"), **spoofed}
    async with start_gateway(config_for(upstream.url)) as url:
        await http.get(url + AUTHORS, headers=headers)
        await http.post(url + "/auth/token", headers=spoofed, json={})
    authed, anonymous = (dict(seen["headers"]) for seen in upstream.seen)
    for name in (n.lower() for n in spoofed):
        assert authed.get(name) != "admin", name
        assert name not in anonymous or name.startswith("x-gatehouse"), name
    assert "forwarded" not in authed
    assert "x-real-ip" not in authed
    assert authed["x-gatehouse-user-id"] == "alice"
    assert authed["x-gatehouse-roles"] == "get-authors"
    assert not any(name.startswith("x-gatehouse-") for name in anonymous)


async def test_locations_point_at_public_paths(start_gateway, issuer, upstream, http) -> None:
    headers = issuer.bearer(["admin"])
    async with start_gateway(config_for(upstream.url)) as url:
        created = await http.post(url + AUTHORS + "/created", headers=headers, json={})
        moved = await http.get(url + AUTHORS + "/redirect", headers=headers)
    assert created.headers["location"] == "/api/v1/authors/1?x=1"
    assert moved.headers["location"] == "/api/v1/authors/1"  # not the upstream's address
    assert upstream.url.split("//")[1] not in moved.text + str(moved.headers)


async def test_a_zero_length_response_is_completed(start_gateway, issuer, upstream) -> None:
    token = issuer.token(["admin"])
    request = (
        f"GET {AUTHORS}/empty HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    async with start_gateway(config_for(upstream.url)) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        answers = []
        for _ in range(2):  # the same connection twice: keep-alive must survive
            writer.write(request)
            async with asyncio.timeout(5):
                answers.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()
    assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
    assert all(b"content-length: 0\r\n" in a for a in answers)


async def test_one_date_header_and_no_upstream_server_header(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    assert len(response.headers.get_list("date")) == 1
    assert "server" not in response.headers


async def test_head_works_on_get_routes(start_gateway, issuer, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        head = await http.head(url + "/auth/me", headers=issuer.bearer([]))
        get = await http.get(url + "/auth/me", headers=issuer.bearer([]))
    assert head.status_code == 200
    assert head.content == b""
    assert get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"]
    assert upstream.seen[0]["method"] == "GET"


async def test_allow_lists_what_the_gateway_answers(start_gateway, issuer, upstream, http):
    async with start_gateway(config_for(upstream.url)) as url:
        on_login = await http.get(url + "/auth/token")
        on_me = await http.post(url + "/auth/me", headers=issuer.bearer([]))
        upstream_405 = await http.get(
            url + AUTHORS + "/not-allowed", headers=issuer.bearer(["admin"])
        )
    assert on_login.headers["allow"] == "POST"
    assert on_me.headers["allow"] == "GET, HEAD"
    assert upstream_405.headers["allow"] == "GET, HEAD, POST"  # TRACE is never routed


async def test_a_405_allows_the_resources_methods_not_the_route_groups(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        collection = await http.options(url + AUTHORS)
        item = await http.options(url + AUTHORS + "/42")
        undocumented = await http.options(url + AUTHORS + "/42/nowhere/known")
    assert collection.status_code == item.status_code == 405
    # The upstream's OpenAPI: /v1/authors has GET and POST, /v1/authors/{id} GET, PUT,
    # DELETE and TRACE (which no route passes).
    assert collection.headers["allow"] == "GET, HEAD, POST"
    assert item.headers["allow"] == "GET, HEAD, PUT, DELETE"
    assert undocumented.headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE"


async def test_upstream_problems_name_the_public_path_and_a_word_code(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS + "/7/problem", headers=issuer.bearer(["admin"]))
    problem = response.json()
    assert response.status_code == 404
    assert problem["instance"] == "/api/v1/authors/7/problem"
    assert problem["code"] == "not_found"
    assert int(response.headers["content-length"]) == len(response.content)


async def test_the_gateways_own_answers_carry_ratelimit_headers(
    start_gateway, issuer, upstream, http
) -> None:
    config = config_for(upstream.url, rate_limits=POLICY, limits={"max_body_bytes": 10})
    async with start_gateway(config) as url:
        unauthorized = await http.get(url + AUTHORS)
        forbidden = await http.post(url + AUTHORS, headers=issuer.bearer(["get-authors"]))
        too_large = await http.post(
            url + AUTHORS, headers=issuer.bearer(["admin"]), content=b"x" * 11
        )
    for response, status in ((unauthorized, 401), (forbidden, 403), (too_large, 413)):
        assert response.status_code == status
        assert response.headers["ratelimit-policy"] == '"default";q=50;w=60'
        assert response.headers["ratelimit"].startswith('"default";r=')


@contextlib.asynccontextmanager
async def raw_upstream(answers: list[bytes]) -> AsyncIterator[str]:
    """An upstream that answers connection i's first request with ``answers[i]`` raw bytes,
    then closes any connection whose second request arrives (a stale keep-alive socket)."""
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answers[min(served, len(answers) - 1)])
        served += 1
        await writer.drain()
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")  # the reuse: dropped without an answer
        writer.close()

    sock = bind_loopback()
    server = await asyncio.start_server(handle, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.close()


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


async def test_a_stale_pooled_connection_is_retried_once_for_idempotent_requests(
    start_gateway, issuer, http
) -> None:
    headers = issuer.bearer(["admin"])
    async with raw_upstream([OK]) as up, start_gateway(config_for(up)) as url:
        first = await http.get(url + AUTHORS, headers=headers)
        reused = await http.get(url + AUTHORS, headers=headers)  # stale socket, then a new one
        stale_post = await http.post(url + AUTHORS + "/x", headers=headers, json={})
    assert (first.status_code, reused.status_code) == (200, 200)
    assert stale_post.status_code == 502  # never replayed: it may have been processed


async def test_an_invalid_upstream_status_is_a_problem_not_plain_text(
    start_gateway, issuer, http
) -> None:
    weird = b"HTTP/1.1 999 Odd\r\ncontent-length: 0\r\n\r\n"
    async with raw_upstream([weird]) as up, start_gateway(config_for(up)) as url:
        response = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unexpected_error_is_a_problem_500(start_gateway, issuer, upstream, http):
    class Broken(MemoryRateLimitStore):
        async def hit(self, key: str, limit: int, window: float):  # type: ignore[no-untyped-def]
            raise RuntimeError("a bug")

    async with start_gateway(config_for(upstream.url)) as url:
        app_store = None  # the store is built in the lifespan; swap its method on the class
        original = MemoryRateLimitStore.hit
        MemoryRateLimitStore.hit = Broken.hit  # type: ignore[method-assign]
        try:
            response = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
        finally:
            MemoryRateLimitStore.hit = original  # type: ignore[method-assign]
        del app_store
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["code"] == "internal_error"
    assert "a bug" not in response.text
