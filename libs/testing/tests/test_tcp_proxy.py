"""The TCP proxy tests use to take a dependency away: bytes flow, a cut resets, a restore heals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gatehouse.testing import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _round_trip(port: int, data: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), 5)
    finally:
        writer.close()


async def test_bytes_flow_both_ways(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        assert await _round_trip(proxy.port, b"hello") == b"hello"


async def test_a_cut_resets_open_connections_and_refuses_new_ones(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await reader.read(10) == b"x"
        await proxy.cut()
        assert await _broken(reader, writer)
        writer.close()
        assert await _refused(proxy.port)
        proxy.restore()
        assert await _round_trip(proxy.port) == b"ping"


async def test_upstream_ports_are_the_client_ports_the_target_sees() -> None:
    seen: list[int] = []

    async def remember_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[1])
        await _echo(reader, writer)

    server = await asyncio.start_server(remember_peer, "127.0.0.1", 0)
    async with server, TcpProxy("127.0.0.1", server.sockets[0].getsockname()[1]) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await reader.read(10) == b"x"
        assert proxy.upstream_ports == frozenset(seen)
        assert len(seen) == 1
        await proxy.cut()
        writer.close()
        assert proxy.upstream_ports == frozenset()


async def _broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """True when the connection is reset or closed instead of echoing."""
    try:
        writer.write(b"y")
        await writer.drain()
        return await asyncio.wait_for(reader.read(10), 5) == b""
    except ConnectionError:
        return True


async def _refused(port: int) -> bool:
    """True when a connection to ``port`` is reset or closed before it echoes."""
    try:
        return await _round_trip(port) == b""
    except ConnectionError:
        return True


def test_url_for_keeps_credentials_path_and_query() -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.port = 40001
    url = "postgresql+asyncpg://user:pw@db.example:5432/name?ssl=off"
    assert proxy.url_for(url) == "postgresql+asyncpg://user:pw@127.0.0.1:40001/name?ssl=off"
    assert TcpProxy.to_url(url).target == ("db.example", 5432)


async def test_a_drop_resets_open_connections_and_lets_new_ones_through(echo_port: int) -> None:
    async with TcpProxy("127.0.0.1", echo_port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"x")
        assert await reader.read(10) == b"x"
        await proxy.drop()
        assert await _broken(reader, writer)
        writer.close()
        assert await _round_trip(proxy.port) == b"ping"
