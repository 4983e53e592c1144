"""The upstream transport (aiohttp's pool, driven directly): bodies, paths, cookies, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gatehouse.gateway import GatewayConfig

from .conftest import config_for, dead_url

AUTHORS = "/api/v1/authors"


def with_transport(config: GatewayConfig, **timeouts: float) -> GatewayConfig:
    upstreams = {}
    for name, upstream in config.upstreams.items():
        changes: dict[str, Any] = {}
        if timeouts:
            changes["timeouts"] = upstream.timeouts.model_copy(update=timeouts)
        upstreams[name] = upstream.model_copy(update=changes)
    return config.model_copy(update={"upstreams": upstreams})


async def test_bodies_stream_both_ways_and_the_raw_path_survives(
    start_gateway, issuer, upstream, http
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"chunk%d," % i

    headers = {**issuer.bearer(["admin"]), "User-Agent": "test-agent"}
    async with start_gateway(with_transport(config_for(upstream.url))) as url:
        posted = await http.post(
            url + AUTHORS + "/a%20b%7E?q=%2B1&q=2", content=body(), headers=headers
        )
        streamed = await http.get(url + AUTHORS + "/stream", headers=headers)
    assert posted.status_code == 200
    seen = upstream.seen[0]
    assert seen["raw_path"] == "/v1/authors/a%20b%7E"
    assert seen["query"] == "q=%2B1&q=2"
    assert seen["body"] == "chunk0,chunk1,chunk2,"
    names = [name for name, _ in seen["headers"]]
    assert [v for n, v in seen["headers"] if n == "user-agent"] == ["test-agent"]  # not replaced
    assert names.count("accept-encoding") == 1  # the client's own, nothing added
    assert streamed.text == "part0;part1;part2;part3;part4;"
    assert "proxy-authenticate" not in streamed.headers


async def test_an_upstream_cookie_is_passed_on_never_kept(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(with_transport(config_for(upstream.url))) as url:
        first = await http.get(url + AUTHORS + "/cookie", headers=issuer.bearer(["admin"]))
        http.cookies.clear()
        await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    assert first.headers["set-cookie"].startswith("session=alice")
    assert "cookie" not in dict(upstream.seen[1]["headers"])  # another caller's request


async def test_unreachable_is_502_and_slow_is_504(start_gateway, issuer, upstream, http) -> None:
    headers = issuer.bearer(["admin"])
    async with start_gateway(with_transport(config_for(dead_url()))) as url:
        down = await http.get(url + AUTHORS, headers=headers)
    slow_config = with_transport(config_for(upstream.url), read=0.2)
    async with start_gateway(slow_config) as url:
        slow = await http.get(url + AUTHORS + "/slow", headers=headers)
    assert (down.status_code, down.json()["code"]) == (502, "bad_gateway")
    assert (slow.status_code, slow.json()["code"]) == (504, "upstream_timeout")
