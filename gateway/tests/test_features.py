"""Edge features: CORS, login limits, content types and gzip, per-user sockets, revocation,
replicas."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gatehouse.gateway import GatewayConfig

from .conftest import Upstream, config_for, dead_url, packaged_config, serve

AUTHORS = "/api/v1/authors"
CORS = {"browser": {"allow_origins": ["https://app.example"]}}


def with_cors(url: str) -> object:
    return config_for(url, cors=CORS)


async def test_cors_preflight_is_answered_and_origins_are_checked(
    start_gateway, issuer, upstream, http
) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with start_gateway(with_cors(upstream.url)) as url:
        allowed = await http.options(url + AUTHORS, headers=preflight)
        refused = await http.options(url + AUTHORS, headers={**preflight, "Origin": "https://evil"})
        actual = await http.get(
            url + AUTHORS, headers={"Origin": "https://app.example", **issuer.bearer(["admin"])}
        )
        foreign = await http.get(
            url + AUTHORS, headers={"Origin": "https://evil", **issuer.bearer(["admin"])}
        )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    assert refused.status_code == 403
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert "ratelimit" in actual.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in foreign.headers
    assert len([s for s in upstream.seen if s["method"] == "OPTIONS"]) == 0


async def test_login_is_limited_per_username_and_per_ip(start_gateway, upstream, http) -> None:
    generous = {"limit": 1000, "window": 60}
    login = {"per_username": {"limit": 3, "window": 60}, "per_ip": {"limit": 5, "window": 60}}
    config = config_for(
        upstream.url, rate_limits={"default": generous, "login": generous}, login=login
    )
    async with start_gateway(config) as url:
        alice = [
            await http.post(url + "/auth/token", json={"username": "Alice", "password": "x"})
            for _ in range(4)
        ]
        form = await http.post(url + "/auth/token", data={"username": "bob", "password": "x"})
        other = await http.post(url + "/auth/token", json={"username": "carol", "password": "x"})
    assert [r.status_code for r in alice] == [200, 200, 200, 429]  # per username (any case)
    assert alice[3].json()["code"] == "rate_limited"
    assert form.status_code == 200
    assert other.status_code == 429  # the sixth login from one IP
    assert json.loads(upstream.seen[0]["body"]) == {"username": "Alice", "password": "x"}


async def test_wrong_content_type_is_415(start_gateway, issuer, upstream, http) -> None:
    headers = issuer.bearer(["admin"])
    async with start_gateway(packaged_config(upstream.url)) as url:
        text = await http.post(url + AUTHORS, content=b"name=x", headers=headers)
        json_ok = await http.post(url + AUTHORS, json={"name": "x"}, headers=headers)
        odd = await http.post(
            url + AUTHORS,
            json={"name": "x"},
            headers={**headers, "Content-Encoding": "br"},
        )
    assert text.status_code == 415
    assert text.json()["code"] == "unsupported_media_type"
    assert json_ok.status_code == 200
    assert odd.status_code == 415


async def test_gzip_bodies_are_decoded_within_the_limit(start_gateway, issuer, upstream, http):
    headers = {
        **issuer.bearer(["admin"]),
        "Content-Encoding": "gzip",
        "Content-Type": "application/json",
    }
    config = config_for(upstream.url, limits={"max_body_bytes": 10_000})
    small = json.dumps({"name": "x" * 100}).encode()
    bomb = gzip.compress(b" " * 5_000_000)  # 5 KB on the wire, 5 MB decoded
    async with start_gateway(config) as url:
        decoded = await http.post(url + AUTHORS, content=gzip.compress(small), headers=headers)
        refused = await http.post(url + AUTHORS, content=bomb, headers=headers)
        corrupt = await http.post(url + AUTHORS, content=b"\x1f\x8bnot gzip", headers=headers)
    assert decoded.status_code == 200
    assert upstream.seen[0]["body"] == small.decode()
    assert "content-encoding" not in dict(upstream.seen[0]["headers"])
    assert refused.status_code == 413
    assert corrupt.status_code == 400
    assert len(upstream.seen) <= 3


async def test_one_user_has_a_bounded_number_of_sockets(start_gateway, issuer, upstream) -> None:
    config = config_for(upstream.url, websockets={"max_per_user": 2})
    ws_url = "/ws"
    headers = issuer.bearer(["get-authors"], sub="hoarder")
    other = issuer.bearer(["get-authors"], sub="someone-else")
    async with start_gateway(config) as url:
        base = url.replace("http://", "ws://") + ws_url
        async with (
            connect(base, additional_headers=headers) as one,
            connect(base, additional_headers=headers) as two,
        ):
            await one.recv()
            await two.recv()
            async with connect(base, additional_headers=headers) as third:
                with pytest.raises(ConnectionClosed) as closed:
                    await third.recv()
            async with connect(base, additional_headers=other) as fine:
                hello = await fine.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "headers" in json.loads(hello)


async def test_revoked_sessions_are_refused_within_seconds(
    start_gateway, issuer, upstream, http
) -> None:
    config = config_for(upstream.url, revocation_poll=0.1)
    token = issuer.token(["get-authors"], sid="session-1")
    other = issuer.token(["get-authors"], sid="session-2")
    bearer, other_bearer = ({"Authorization": f"Bearer {t}"} for t in (token, other))
    async with start_gateway(config) as url:
        base = url.replace("http://", "ws://") + "/ws"
        async with connect(base, additional_headers=bearer) as ws:
            await ws.recv()
            before = await http.get(url + AUTHORS, headers=bearer)  # now cached as verified
            now = time.time()
            upstream.revoked.append(
                {"kind": "session", "id": "session-1", "revoked_at": now, "expires_at": now + 300}
            )
            with pytest.raises(ConnectionClosed) as closed:
                await _drain(ws)
        after = await http.get(url + AUTHORS, headers=bearer)
        untouched = await http.get(url + AUTHORS, headers=other_bearer)
    assert before.status_code == 200
    assert after.status_code == 401
    assert untouched.status_code == 200
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "session revoked")


def authors_replicas(config: GatewayConfig, *urls: str) -> GatewayConfig:
    """``config`` with the authors upstream at ``urls``."""
    authors = config.upstreams["authors"].model_copy(update={"urls": urls})
    return config.model_copy(update={"upstreams": {**config.upstreams, "authors": authors}})


async def test_a_refusing_replica_is_skipped_without_errors(
    start_gateway, issuer, http, upstream
) -> None:
    config = authors_replicas(config_for(upstream.url), dead_url(), upstream.url)
    async with start_gateway(config) as url:
        statuses = [
            (await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))).status_code
            for _ in range(10)
        ]
    assert statuses == [200] * 10
    assert len(upstream.seen) == 10


async def test_a_burst_at_a_dead_replica_ejects_it_once_with_one_log_line(
    start_gateway, issuer, http, upstream, caplog
) -> None:
    """Requests already under way when a replica goes out fail alike: they neither
    lengthen its time out nor write a line each (a reconnect storm wrote thousands)."""
    config = authors_replicas(config_for(upstream.url), dead_url(), upstream.url)
    async with start_gateway(config) as url:
        headers = issuer.bearer(["admin"])
        caplog.set_level(logging.WARNING, "gatehouse.gateway.upstream")
        responses = await asyncio.gather(
            *(http.get(url + AUTHORS, headers=headers) for _ in range(40))
        )
    assert [r.status_code for r in responses] == [200] * 40
    ejections = [r.getMessage() for r in caplog.records if " out for " in r.getMessage()]
    assert len(ejections) == 1, ejections
    assert "out for 2.0s: cannot connect" in ejections[0]


async def test_killing_one_of_two_replicas_under_load_gives_no_503s(
    start_gateway, issuer, http
) -> None:
    one, two = Upstream(), Upstream()
    generous = {"limit": 100_000, "window": 60}
    async with serve(two) as two_url, contextlib.AsyncExitStack() as replica_one:
        one_url = await replica_one.enter_async_context(serve(one))
        config = config_for(one_url, rate_limits={"default": generous, "login": generous})
        config = authors_replicas(config, one_url, two_url)
        headers = issuer.bearer(["admin"])
        stop = asyncio.Event()
        async with start_gateway(config) as url:

            async def client() -> list[int]:
                got = []
                while not stop.is_set():
                    got.append((await http.get(url + AUTHORS, headers=headers)).status_code)
                return got

            clients = [asyncio.create_task(client()) for _ in range(4)]
            await asyncio.sleep(0.3)
            served_before = len(one.seen)
            await replica_one.aclose()  # replica one goes away while the load goes on
            await asyncio.sleep(0.5)
            stop.set()
            results = [s for c in await asyncio.gather(*clients) for s in c]
    assert served_before > 0
    assert results.count(503) == 0
    assert results.count(502) <= 4  # at most the requests that were in flight on it
    assert results[-20:] == [200] * 20


async def _drain(ws) -> None:  # type: ignore[no-untyped-def]
    """Read until the socket closes (at most 5 s)."""
    async with asyncio.timeout(5):
        while True:
            await ws.recv()


async def test_one_openapi_for_the_public_surface(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        document = (await http.get(url + "/openapi.json")).json()
        docs = await http.get(url + "/docs")
        asyncapi = await http.get(url + "/asyncapi.json")
    paths = document["paths"]
    assert set(paths) == {"/api/v1/authors", "/api/v1/authors/{author_id}", "/auth/token"}
    assert "trace" not in paths["/api/v1/authors/{author_id}"]  # not routed
    listing = paths["/api/v1/authors"]["get"]
    assert listing["security"] == [{"bearerAuth": []}]
    assert {"401", "403", "429", "502", "503", "504"} <= set(listing["responses"])
    assert {"413", "415"} <= set(paths["/api/v1/authors"]["post"]["responses"])
    login = paths["/auth/token"]["post"]
    assert "security" not in login
    assert (
        "401" not in login["responses"] or login["responses"]["401"] != listing["responses"]["401"]
    )
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Author" in document["components"]["schemas"]
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert asyncapi.json()["servers"]["gateway"]["pathname"] == "/ws"
