"""Realtime's uvicorn protocol (lean_protocol.py): the same behaviour as uvicorn's own
with less held per idle socket (its inbox and gate: libs/common's tests), and the
shared-frame write. Memory itself is measured in bench/realtime.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
import websockets
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from gatehouse.common.events import CloudEvent, InMemoryEventBus
from gatehouse.realtime import RealtimeSettings, create_app, uvicorn_ws_options
from gatehouse.realtime.frames import TextMessage, text_frame
from gatehouse.realtime.lean_protocol import SEND_NOW, LeanWebSocketProtocol
from gatehouse.testing import serve

AUTHOR = "00000000-0000-4000-8000-00000000000b"
PAD = "x" * 32_000


def big(sequence: int) -> CloudEvent:
    return CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.updated",
        subject=AUTHOR,
        data={"id": AUTHOR, "pad": PAD},
        sequence=sequence,
    )


async def test_a_client_that_stops_reading_is_closed_1013_the_others_get_everything(
    issuer: Any, start_realtime: Any
) -> None:
    """Write pauses of the transport (the protocol's gate) hold a slow client's sends
    until its send queue fills; then it is closed with 1013 once it reads again."""
    bus = InMemoryEventBus()
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with (
        start_realtime(bus=bus, send_queue_size=4, close_timeout=10) as rt,
        websockets.connect(rt.ws_url, additional_headers=headers) as fast,
        websockets.connect(rt.ws_url, additional_headers=headers, max_queue=1) as slow,
    ):
        for ws in (fast, slow):
            await ws.send('{"id": 1, "op": "subscribe", "channel": "authors"}')
            assert json.loads(await ws.recv())["ok"] is True
        received = 0
        for sequence in range(1, 801):  # ~25 MB: more than loopback buffers hold
            await bus.publish(big(sequence))
            while received < sequence:
                json.loads(await asyncio.wait_for(fast.recv(), 5))
                received += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(slow.recv(), 10)
    assert received == 800
    assert slow.close_code == 1013


# A broadcast's frame, built once (frames.py) and written by the protocol (issue #8).

SHORT, MEDIUM, LONG = "a" * 125, "b" * 65_535, "c" * 65_536  # the three length fields
NON_ASCII = ["é" * 63, "é" * 64, "€" * 21_846, "😀" * 16_384, "naïve ☃ 😀 " * 10_000]
TEXTS = ["", "{}", SHORT, "x" * 126, MEDIUM, LONG, "y" * 200_000, *NON_ASCII]


def test_the_shared_frame_is_the_frame_websockets_would_send() -> None:
    for text in TEXTS:
        payload = text.encode()
        expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
        assert text_frame(payload) == expected, len(payload)
        message = TextMessage(text)
        assert message.frame == expected
        assert message.frame is message.frame  # built once


class BufferTransport(asyncio.Transport):
    """An in-memory transport: what the server writes, and its write pauses."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@contextlib.asynccontextmanager
async def paired(
    *, deflate: bool = False, frame_log: bool = False
) -> AsyncIterator[tuple[Any, Any, BufferTransport]]:
    """The server protocol on an in-memory transport, a websockets client protocol as its
    peer, and the handshake done: yields (server protocol, client, transport). With
    ``frame_log``, websockets' debug log of frames is on (the caller restores the level)."""
    accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set_result(None)
        await receive()

    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, ws_per_message_deflate=deflate, log_level="warning"
    )
    config.load()
    if frame_log:
        logging.getLogger("uvicorn.error").setLevel(logging.DEBUG)
    server = LeanWebSocketProtocol(config, ServerState(), {})
    transport = BufferTransport()
    server.connection_made(transport)
    client = ClientProtocol(
        parse_uri("ws://127.0.0.1:8000/ws"),
        extensions=[ClientPerMessageDeflateFactory()] if deflate else None,
        max_size=None,
    )
    client.send_request(client.connect())
    server.data_received(b"".join(client.data_to_send()))
    await asyncio.wait_for(accepted, 5)
    try:
        yield server, client, transport
    finally:
        server.connection_lost(None)  # the app reads its disconnect and ends
        await asyncio.wait_for(asyncio.gather(*server.tasks), 5)


def received(client: Any, transport: BufferTransport) -> list[str | bytes]:
    """What the client reads of the bytes written so far: the texts (bytes: a ping)."""
    client.receive_data(bytes(transport.written))
    transport.written.clear()
    assert client.parser_exc is None
    out: list[str | bytes] = []
    for event in client.events_received():
        if isinstance(event, Frame):
            out.append(event.data.decode() if event.opcode is Opcode.TEXT else event.data)
    return out


async def test_the_protocol_writes_the_shared_frame_under_its_state_checks() -> None:
    async with paired() as (server, client, transport):
        send_now = server.scope["extensions"][SEND_NOW]
        received(client, transport)  # the handshake response
        for text in TEXTS:
            message = TextMessage(text)
            assert send_now(message)
            assert transport.written == message.frame  # the shared bytes themselves
            assert received(client, transport) == [text]
        # The frame is written past websockets' object: none of its output may be left
        # pending by uvicorn, whatever it answered or sent.
        assert server.conn.writes == []
        client.send_ping(b"p")
        server.data_received(b"".join(client.data_to_send()))  # answered with a pong
        server.send_keepalive_ping()
        assert server.conn.writes == []
        assert send_now(TextMessage("after the pong and the ping"))
        assert received(client, transport)[-1] == "after the pong and the ping"
        # A paused transport: nothing written, the caller queues.
        server.pause_writing()
        assert not send_now(TextMessage("paused"))
        server.resume_writing()
        assert send_now(TextMessage("resumed"))
        assert received(client, transport) == ["resumed"]
        # The peer closed: nothing more.
        client.send_close(1000)
        server.data_received(b"".join(client.data_to_send()))
        transport.written.clear()
        assert not send_now(TextMessage("too late"))
        assert transport.written == b""


async def test_with_permessage_deflate_websockets_frames_the_text_itself() -> None:
    async with paired(deflate=True) as (server, client, transport):
        assert server.conn.extensions  # negotiated
        send_now = server.scope["extensions"][SEND_NOW]
        received(client, transport)
        for text in TEXTS:
            assert send_now(TextMessage(text))
            if text:
                assert transport.written[0] & 0x40, "RSV1: compressed by websockets"
            assert received(client, transport) == [text]
        server.pause_writing()
        assert not send_now(TextMessage("paused"))


async def test_with_its_frame_log_on_websockets_frames_the_text_itself() -> None:
    logger = logging.getLogger("uvicorn.error")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    level = logger.level
    async with paired(frame_log=True) as (server, client, transport):
        logger.addHandler(handler)
        try:
            send_now = server.scope["extensions"][SEND_NOW]
            received(client, transport)
            assert send_now(TextMessage("logged"))
            assert received(client, transport) == ["logged"]
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert any("> TEXT 'logged'" in r.getMessage() for r in records)


async def test_a_broadcast_arrives_intact_and_in_order_over_uvicorn(issuer: Any) -> None:
    """Texts of the three length classes and non-ASCII ones, broadcast back to back to
    real clients (their frames checked by websockets): the same texts, in order."""
    settings = RealtimeSettings(oidc_issuer=issuer.issuer_url, amqp_url=None)
    app = create_app(settings, bus=InMemoryEventBus())
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(app, **uvicorn_ws_options(settings)))
        ws_url = url.replace("http://", "ws://", 1) + "/ws"
        clients = [
            await stack.enter_async_context(
                websockets.connect(ws_url, additional_headers=headers, max_size=None)
            )
            for _ in range(3)
        ]
        for ws in clients:
            await ws.send('{"id": 1, "op": "subscribe", "channel": "authors"}')
            assert json.loads(await ws.recv())["ok"] is True
        hub = app.runtime.hub
        for text in TEXTS:
            assert hub.broadcast("authors", text) == 3
        for ws in clients:
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in TEXTS] == TEXTS


async def test_behind_a_paused_transport_the_queue_keeps_the_order(issuer: Any) -> None:
    """A client that stops reading pauses the server's transport: later messages are
    queued, and none is written past older queued ones once it reads again."""
    settings = RealtimeSettings(oidc_issuer=issuer.issuer_url, amqp_url=None, send_queue_size=1000)
    app = create_app(settings, bus=InMemoryEventBus())
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with (
        serve(app, **uvicorn_ws_options(settings)) as url,
        websockets.connect(
            url.replace("http://", "ws://", 1) + "/ws",
            additional_headers=headers,
            max_size=None,
            max_queue=1,
        ) as slow,
    ):
        await slow.send('{"id": 1, "op": "subscribe", "channel": "authors"}')
        assert json.loads(await slow.recv())["ok"] is True
        (conn,) = app.runtime.hub.connections
        sent: list[str] = []
        while conn.backlog == 0:  # until the transport paused and messages wait
            sent.append(f"{len(sent)} {'é' * 50_000}")
            app.runtime.hub.broadcast("authors", sent[-1])
            await asyncio.sleep(0)  # let the loop flush what it can
            assert len(sent) < 2_000, "the transport never paused"
        for n in range(5):  # small ones, while older ones wait
            sent.append(f"small {n} €")
            app.runtime.hub.broadcast("authors", sent[-1])
        assert [await asyncio.wait_for(slow.recv(), 5) for _ in sent] == sent
        assert conn.backlog == 0
