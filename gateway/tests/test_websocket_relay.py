"""The upstream -> client relay at the byte level, against an upstream whose every byte
the test writes: frames cut anywhere by TCP, pings between them, a frame over the
limit, a client that stops reading. Run through the gateway's own server (frames
relayed as they are) and through plain uvicorn (the ASGI fallback, frames decoded)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close, Frame, Opcode

from gatehouse import testing
from gatehouse.gateway import GatewaySettings, create_app
from gatehouse.testing import TestIssuer

from .conftest import config_for

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_upstream(script: Script) -> AsyncIterator[str]:
    """An upstream on bare asyncio streams: the handshake, then ``script`` owns the socket."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = re.search(rb"(?im)^sec-websocket-key: *(\S+)", head)
            if key is None:  # the gateway's OpenAPI fetch: nothing to say
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                return
            accept = base64.b64encode(hashlib.sha1(key.group(1) + GUID).digest())  # noqa: S324
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await script(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def frame(opcode: Opcode, payload: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, payload, fin=fin).serialize(mask=False, extensions=())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One frame from the gateway (a client: masked), unmasked."""
    first, second = await reader.readexactly(2)
    assert second & 0x80, "the gateway's frames to its upstream are masked"
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@contextlib.asynccontextmanager
async def gateway(
    issuer: TestIssuer, upstream_url: str, server: str, **changes: Any
) -> AsyncIterator[str]:
    """The gateway in front of ``upstream_url``: on its own server options, or on plain
    uvicorn (``server="plain"``), which offers no frame sink."""
    app = create_app(
        GatewaySettings(oidc_issuer=issuer.issuer_url, redis_url=None),
        config=config_for(upstream_url, **changes),
    )
    options = app.server_options()
    if server == "plain":
        options = {**options, "ws": "websockets-sansio"}
    async with testing.serve(app, **options) as url:
        yield url.replace("http://", "ws://") + "/ws"


MESSAGES: list[str | bytes] = [
    "short",  # 7-bit length
    "é" * 150,  # 16-bit length, not ASCII
    bytes(range(256)) * 300,  # 64-bit length, binary
    "fragmented-",
    "last",
]


def upstream_bytes() -> bytes:
    """MESSAGES as frames, with pings between them and one message in two fragments."""
    out = [frame(Opcode.TEXT, MESSAGES[0].encode()), frame(Opcode.PING, b"p1")]  # type: ignore[union-attr]
    out.append(frame(Opcode.TEXT, MESSAGES[1].encode()))  # type: ignore[union-attr]
    out.append(frame(Opcode.BINARY, MESSAGES[2]))  # type: ignore[arg-type]
    out.append(frame(Opcode.TEXT, b"frag", fin=False))
    out.append(frame(Opcode.PING, b"p2"))  # a control frame inside a fragmented message
    out.append(frame(Opcode.CONT, b"mented-"))
    out.append(frame(Opcode.TEXT, b"last"))
    return b"".join(out)


@pytest.mark.parametrize("server", ["gateway", "plain"])
@pytest.mark.parametrize("chunk", [1, 7, 1000, 0])
async def test_frames_cut_anywhere_arrive_whole_in_order_and_pings_are_answered(
    issuer: TestIssuer, server: str, chunk: int
) -> None:
    pongs: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = upstream_bytes()
        step = chunk or len(data)
        for at in range(0, len(data), step):
            writer.write(data[at : at + step])
            await writer.drain()
            if at < 400:  # the first few hundred bytes in separate reads, the rest faster
                await asyncio.sleep(0.001)
        while len(pongs) < 2:
            opcode, payload = await read_frame(reader)
            if opcode == Opcode.PONG:
                pongs.append(payload)
        await reader.read()

    limits = {"max_ws_frame_bytes": 1 << 20}
    async with (
        raw_upstream(script) as upstream,
        gateway(issuer, upstream, server, limits=limits) as url,
        connect(url, additional_headers=issuer.bearer(["get-authors"])) as ws,
    ):
        received = [await asyncio.wait_for(ws.recv(), 10) for _ in MESSAGES]
    assert received == MESSAGES
    assert pongs == [b"p1", b"p2"]


@pytest.mark.parametrize("server", ["gateway", "plain"])
async def test_an_upstream_frame_over_the_limit_closes_both_sides_with_1009(
    issuer: TestIssuer, server: str
) -> None:
    closes: list[tuple[int, str]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(Opcode.TEXT, b"fits"))
        writer.write(frame(Opcode.TEXT, b"x" * 5000)[:200])  # its header says 5000 bytes
        await writer.drain()
        opcode, payload = await read_frame(reader)
        if opcode == Opcode.CLOSE:
            close = Close.parse(payload)
            closes.append((close.code, close.reason))

    limits = {"max_body_bytes": 1000, "max_ws_frame_bytes": 4096}
    async with (
        raw_upstream(script) as upstream,
        gateway(issuer, upstream, server, limits=limits) as url,
        connect(url, additional_headers=issuer.bearer(["get-authors"])) as ws,
    ):
        assert await ws.recv() == "fits"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        for _ in range(100):
            if closes:
                break
            await asyncio.sleep(0.02)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert [code for code, _ in closes] == [1009]


async def test_a_client_that_stops_reading_backs_the_upstream_up_not_the_gateway(
    issuer: TestIssuer,
) -> None:
    """The gateway stops reading the upstream while the client cannot take more, so an
    upstream's per-client backlog (realtime closes a slow client) sees the slowness and
    the gateway holds no more than its buffers; once the client reads, all arrives."""
    frame_size, frames = 65_536, 1024  # 64 MiB offered
    sent = asyncio.Event()
    written = {"bytes": 0, "blocked": False}

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        payload = frame(Opcode.BINARY, b"x" * frame_size)
        for _ in range(frames):
            writer.write(payload)
            try:
                await asyncio.wait_for(writer.drain(), 1.0)
            except TimeoutError:
                written["blocked"] = True
                sent.set()
                await writer.drain()
            written["bytes"] += len(payload)
        sent.set()
        await reader.read()

    limits = {"max_ws_frame_bytes": 1 << 20}
    async with (
        raw_upstream(script) as upstream,
        gateway(issuer, upstream, "gateway", limits=limits) as url,
        connect(url, additional_headers=issuer.bearer(["get-authors"]), max_size=None) as ws,
    ):
        await asyncio.wait_for(sent.wait(), 60)
        assert written["blocked"], "the upstream could write everything: nothing pushed back"
        assert written["bytes"] < 40 << 20  # far from the 64 MiB offered
        count = 0
        while count < frames:
            assert len(await asyncio.wait_for(ws.recv(), 10)) == frame_size
            count += 1
    assert count == frames
