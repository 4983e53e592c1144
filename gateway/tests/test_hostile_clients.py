"""One client must not hold sockets or stall the process: header limits and read deadlines."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from .conftest import config_for

LIMITS = {
    "max_header_count": 50,
    "max_header_bytes": 4096,
    "max_url_bytes": 1024,
    "header_timeout": 0.3,
    "body_timeout": 0.3,
}


async def exchange(url: str, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes (or ``wait`` seconds pass)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read()
    except TimeoutError:
        return b"<still open>"
    finally:
        writer.close()


def head(target: str, extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: gw\r\n{extra}\r\n".encode()


async def test_thousands_of_headers_are_431_and_never_proxied(start_gateway, upstream) -> None:
    many = "".join(f"X-H{i}: {i}\r\n" for i in range(8000))
    async with start_gateway(config_for(upstream.url)) as url:
        answer = await exchange(url, head("/auth/logout", many, "POST"))
        healthy = await exchange(url, head("/healthz", "Connection: close\r\n"))
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"application/problem+json" in answer
    assert upstream.seen == []
    assert healthy.startswith(b"HTTP/1.1 200 ")


async def test_header_count_and_size_limits(start_gateway, upstream) -> None:
    config = config_for(upstream.url, limits=LIMITS)
    async with start_gateway(config) as url:
        counted = await exchange(url, head("/auth/token", "X-A: 1\r\n" * 51, "POST"))
        sized = await exchange(url, head("/auth/token", f"X-Big: {'a' * 6000}\r\n", "POST"))
        fits = await exchange(url, head("/healthz", "X-A: 1\r\n" * 40 + "Connection: close\r\n"))
    assert counted.startswith(b"HTTP/1.1 431 ")
    assert sized.startswith(b"HTTP/1.1 431 ")
    assert fits.startswith(b"HTTP/1.1 200 ")
    assert upstream.seen == []


async def test_a_long_url_is_414(start_gateway, upstream) -> None:
    config = config_for(upstream.url, limits=LIMITS)
    async with start_gateway(config) as url:
        answer = await exchange(url, head("/api/v1/authors/" + "a" * 2000))
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert b'"code":"uri_too_long"' in answer


async def test_a_slow_request_head_is_cut_off(start_gateway, upstream) -> None:
    config = config_for(upstream.url, limits=LIMITS)
    async with start_gateway(config) as url:
        partial = await exchange(url, b"GET /healthz HTTP/1.1\r\nHost: gw\r\n")
        silent = await exchange(url, b"")
    assert partial.startswith(b"HTTP/1.1 408 ")
    assert silent.startswith(b"HTTP/1.1 408 ")


async def test_a_slow_request_body_is_cut_off(start_gateway, upstream) -> None:
    config = config_for(upstream.url, limits=LIMITS)
    request = head("/auth/token", "Content-Length: 100\r\n", "POST") + b"x" * 10
    async with start_gateway(config) as url:
        answer = await exchange(url, request)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert all(len(seen["body"]) < 100 for seen in upstream.seen)  # abandoned, never whole


async def test_malformed_requests_get_a_problem_not_plain_text(start_gateway, upstream) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        answer = await exchange(url, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"application/problem+json" in answer


async def test_a_huge_websocket_frame_is_refused_from_its_header(start_gateway, upstream) -> None:
    """The transport's own limit: a frame announcing 15 MB is refused before its payload."""
    handshake = head(
        "/ws",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    )
    frame = bytes([0x81, 0xFF]) + (15_000_000).to_bytes(8, "big") + b"\x00" * 4 + b"x" * 1024
    async with start_gateway(config_for(upstream.url)) as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(handshake)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(frame)
        async with asyncio.timeout(5):
            answer = await reader.read(64)
        writer.close()
    assert answer[0] == 0x88  # a close frame, at once
    assert int.from_bytes(answer[2:4], "big") == 1009
