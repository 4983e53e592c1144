"""HTTP proxying against a real upstream: bodies, headers, and upstream failures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from .conftest import config_for, dead_url

AUTHORS = "/api/v1/authors"


def headers_of(record: dict) -> dict[str, str]:
    return dict(record["headers"])


async def test_chunked_request_body_is_streamed(start_gateway, issuer, upstream, http) -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(4):
            yield b"chunk%d," % i

    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.post(url + AUTHORS, content=body(), headers=issuer.bearer(["admin"]))
    assert response.status_code == 200
    assert upstream.seen[0]["body"] == "chunk0,chunk1,chunk2,chunk3,"


async def test_a_response_head_is_not_held_for_its_body(start_gateway, issuer, upstream, http):
    """The gateway writes a head together with its body when both are ready at once;
    a head whose body is slow still goes out at once."""
    headers = issuer.bearer(["admin"])
    async with start_gateway(config_for(upstream.url)) as url:
        started = time.monotonic()
        async with http.stream("GET", url + AUTHORS + "/trickle", headers=headers) as got:
            head_after = time.monotonic() - started
            assert got.status_code == 200
            assert "x-request-id" in got.headers
            assert await got.aread() == b"late"
    assert head_after < 0.8


async def test_streamed_response_arrives_whole_without_hop_by_hop(
    start_gateway, issuer, upstream, http
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS + "/stream", headers=issuer.bearer(["admin"]))
        echoed = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    assert response.text == "part0;part1;part2;part3;part4;"
    assert "proxy-authenticate" not in response.headers
    assert "keep-alive" not in echoed.headers


async def test_request_headers_are_cleaned_and_forwarded(start_gateway, issuer, upstream, http):
    sent = {
        **issuer.bearer(["admin"]),
        "X-User-Id": "spoofed",
        "X-User-Roles": "admin",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "Connection": "keep-alive, X-Secret-Hop",
        "X-Secret-Hop": "1",
        "Proxy-Authorization": "Basic abc",
        "X-Request-ID": "req-123",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "Accept": "application/json",
    }
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS, headers=sent)
    got = headers_of(upstream.seen[0])
    assert not any(name.startswith("x-user-") for name in got)
    assert "x-secret-hop" not in got
    assert "proxy-authorization" not in got
    assert got["x-forwarded-for"] == "127.0.0.1"  # the peer is not a trusted proxy
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == url.removeprefix("http://")
    assert got["x-request-id"] == "req-123"
    assert got["traceparent"] == sent["traceparent"]
    assert got["accept"] == "application/json"
    assert response.headers["x-request-id"] == "req-123"


async def test_trusted_proxy_chain_is_extended(start_gateway, issuer, upstream, http) -> None:
    config = config_for(upstream.url, trusted_proxies=["127.0.0.0/8"])
    headers = {**issuer.bearer(["admin"]), "X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
    async with start_gateway(config) as url:
        await http.get(url + AUTHORS, headers=headers)
    assert headers_of(upstream.seen[0])["x-forwarded-for"] == "203.0.113.9, 10.0.0.1, 127.0.0.1"


async def test_a_request_id_is_generated_when_missing(start_gateway, issuer, upstream, http):
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    generated = response.headers["x-request-id"]
    assert len(generated) >= 16
    assert headers_of(upstream.seen[0])["x-request-id"] == generated


async def test_security_headers_on_proxied_and_error_responses(start_gateway, upstream, http):
    async with start_gateway(config_for(upstream.url)) as url:
        ok = await http.post(url + "/auth/token", json={})
        refused = await http.get(url + AUTHORS)
    for response in (ok, refused):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "max-age=" in response.headers["strict-transport-security"]
        assert "default-src" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_upstream_down_is_502_problem(start_gateway, issuer, upstream, http) -> None:
    async with start_gateway(config_for(dead_url())) as url:
        response = await http.get(url + AUTHORS, headers=issuer.bearer(["admin"]))
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "bad_gateway"


async def test_slow_upstream_is_504_problem(start_gateway, issuer, upstream, http) -> None:
    config = config_for(upstream.url)
    authors = config.upstreams["authors"]
    timeouts = authors.timeouts.model_copy(update={"read": 0.2})
    upstreams = {**config.upstreams, "authors": authors.model_copy(update={"timeouts": timeouts})}
    config = config.model_copy(update={"upstreams": upstreams})
    async with start_gateway(config) as url:
        response = await http.get(url + AUTHORS + "/slow", headers=issuer.bearer(["admin"]))
    assert response.status_code == 504
    assert response.json()["code"] == "upstream_timeout"


async def test_oversized_bodies_are_413(start_gateway, issuer, upstream, http) -> None:
    config = config_for(upstream.url, limits={"max_body_bytes": 1000, "max_ws_frame_bytes": 100})

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 300

    async with start_gateway(config) as url:
        declared = await http.post(
            url + AUTHORS, content=b"x" * 1001, headers=issuer.bearer(["admin"])
        )
        streamed = await http.post(
            url + AUTHORS, content=chunked(), headers=issuer.bearer(["admin"])
        )
        fits = await http.post(url + AUTHORS, content=b"x" * 1000, headers=issuer.bearer(["admin"]))
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.headers["content-type"] == "application/problem+json"
    assert fits.status_code == 200
    assert [len(r["body"]) for r in upstream.seen if r["body"]] == [1000]
