"""The gateway's WebSocket connection to an upstream: a handshake, then frames relayed as bytes.

An event fanned out to 10,000 subscribers crosses the gateway 10,000 times, so the
upstream -> client direction is where a proxied socket spends its CPU. A server's
frames are unmasked, and with no extension negotiated on either hop (the gateway
offers none upstream and accepts none from clients) a data frame from the upstream
is, byte for byte, the frame the client must get. So :class:`UpstreamSocket` does not
decode and re-encode messages: it reads frame *headers* only, and hands runs of whole
data frames to a :class:`FrameSink` (the client's side) in one write. It still

* answers the upstream's pings itself (the client is pinged by the gateway's server),
* turns the upstream's close frame into the client's close, and a connection lost
  without one into ``1012`` (the caller's choice of code and reason),
* refuses a frame over ``max_bytes`` from its header, before its payload is buffered,
  and any frame a server may not send (masked, reserved bits, unknown opcodes);
* keeps a partial frame back until it is whole, so that the client side's own frames
  (pings, a close) never land inside a relayed one;
* pauses reading the upstream while the client cannot take more (back-pressure reaches
  the upstream, whose per-client backlog then decides, as for a direct client).

Client -> upstream messages are rare (subscribe, RPC calls) and are framed (masked)
one by one. The opening handshake is built and checked by the websockets library's
sans-I/O client, which is then dropped: an idle proxied socket holds this object,
its transport and nothing else on the upstream side (no task, no parser).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHandshake
from websockets.frames import Close, Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

FRAME_SINK = "gatehouse.websocket.frame_sink"
"""The ASGI extension (``scope["extensions"]``) that offers the client's side of a
WebSocket as a :class:`FrameSink` (the gateway's uvicorn protocol does)."""
MAX_RESPONSE_HEAD = 16_384
CLOSE_TIMEOUT = 2.0  # seconds the upstream has to answer the gateway's close frame
_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})
_TLS: ssl.SSLContext | None = None


class UpstreamRefused(Exception):
    """The upstream answered the handshake with a status other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the upstream answered {status}")
        self.status = status


FlowListener = Callable[[bool], None]
"""Told ``True`` when the client side cannot take more frames, ``False`` when it can again."""


class FrameSink(Protocol):
    """The client's side of a proxied socket, as the upstream connection sees it."""

    def write_frames(self, frames: bytes) -> None:
        """Write whole, unmasked data frames to the client as they are."""

    def close_now(self, code: int, reason: str) -> None:
        """Close the client with ``code`` and ``reason`` (once; later calls do nothing)."""

    def listen_flow(self, listener: FlowListener) -> None:
        """Call ``listener`` when the client stops and starts taking frames."""


class UpstreamSocket(asyncio.Protocol):
    """One proxied socket's connection to its upstream (see the module's text)."""

    __slots__ = (
        "_close_sent",
        "_closed",
        "_head",
        "_lost",
        "_max_bytes",
        "_need",
        "_on_lost",
        "_pending",
        "_sink",
        "_writable",
        "subprotocol",
        "transport",
    )

    def __init__(self, max_bytes: int) -> None:
        self._head: asyncio.Future[bytes] | None = None  # set while the handshake is read
        self._max_bytes = max_bytes
        # Bytes not yet relayed: the start of a frame not yet whole, or what came before
        # attach(); ``_need``: how many the frame needs in all, when its header says.
        self._pending = bytearray()
        self._need = 0
        self._sink: FrameSink | None = None
        self._on_lost: tuple[int, str] = (1011, "")
        self._writable: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._close_sent = False
        self._closed = False  # the closing handshake finished, or the connection is gone
        self.subprotocol: str | None = None
        self.transport: asyncio.Transport | None = None

    # -- opening ---------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        headers: list[tuple[str, str]],
        subprotocols: list[str] | None,
        max_bytes: int,
    ) -> UpstreamSocket:
        """Connect to ``url`` (``ws://`` or ``wss://``) and complete the handshake.

        Raises ``OSError`` (cannot connect), :class:`UpstreamRefused` (not 101),
        ``InvalidHandshake`` (a 101 that is not a valid WebSocket answer); the
        caller bounds the time.
        """
        uri = parse_uri(url)
        handshake = ClientProtocol(
            uri, subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None
        )
        request = handshake.connect()
        for name, value in headers:
            request.headers[name] = value
        handshake.send_request(request)
        loop = asyncio.get_running_loop()
        sock = cls(max_bytes)
        sock._head = head = loop.create_future()
        host = urlsplit(url).hostname or uri.host
        tls = _tls() if uri.secure else None
        await loop.create_connection(
            lambda: sock, host, uri.port, ssl=tls, server_hostname=host if tls else None
        )
        try:
            sock._write(b"".join(handshake.data_to_send()))
            sock._check_handshake(handshake, await head)
        except BaseException:
            sock.abort()
            raise
        finally:
            sock._head = None
        return sock

    def _check_handshake(self, handshake: ClientProtocol, head: bytes) -> None:
        status_line = head[: head.find(b"\r\n")].split(b" ", 2)
        status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        if status != 101:
            raise UpstreamRefused(status)
        handshake.receive_data(head)
        handshake.events_received()
        if handshake.handshake_exc is not None:
            raise handshake.handshake_exc
        self.subprotocol = handshake.subprotocol

    # -- relaying --------------------------------------------------------------------

    def attach(self, sink: FrameSink, on_lost: tuple[int, str]) -> None:
        """Start relaying to ``sink``; ``on_lost``: the client's close when the
        connection goes without a close frame."""
        self._sink = sink
        self._on_lost = on_lost
        sink.listen_flow(self.client_flow)
        if self._pending:
            pending, self._pending = bytes(self._pending), bytearray()
            self._relay(pending)
        if self._closed:
            sink.close_now(*on_lost)

    def data_received(self, data: bytes) -> None:
        if self._sink is None:  # the handshake, or frames before attach()
            self._pending += data
            head = self._head
            if head is not None and not head.done():
                self._read_head(head)
        elif self._pending:
            self._pending += data
            if len(self._pending) >= self._need:
                pending, self._pending = bytes(self._pending), bytearray()
                self._relay(pending)
        else:
            self._relay(data)

    def _read_head(self, head: asyncio.Future[bytes]) -> None:
        end = self._pending.find(b"\r\n\r\n")
        if end < 0:
            if len(self._pending) > MAX_RESPONSE_HEAD:
                head.set_exception(InvalidHandshake("the upstream's response head is too large"))
            return
        head.set_result(bytes(self._pending[: end + 4]))
        del self._pending[: end + 4]

    def _relay(self, data: bytes) -> None:
        """Hand whole data frames to the sink; keep a partial frame; act on control frames."""
        sink = self._sink
        assert sink is not None
        size = len(data)
        pos = start = 0
        self._need = 0  # stays 0 when a header is cut: any more bytes may complete it
        while size - pos >= 2:
            first, second = data[pos], data[pos + 1]
            length = second & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", data, pos + 2)[0]
                head = 10
            opcode = first & 0x0F
            if second & 0x80 or first & 0x70 or (opcode not in _DATA_OPCODES and opcode < 8):
                self._protocol_error("the upstream sent an invalid frame")
                return
            if length > self._max_bytes:
                if pos > start:
                    sink.write_frames(data[start:pos])
                self._too_big()
                return
            end = pos + head + length
            if end > size:
                self._need = end - pos
                break
            if opcode >= 8:  # control: answered or acted on here, never relayed
                if pos > start:
                    sink.write_frames(data[start:pos])
                start = end
                if length > 125 or not first & 0x80:
                    self._protocol_error("the upstream sent an invalid control frame")
                    return
                if not self._control(opcode, data[pos + head : end]):
                    return
            pos = end
        if pos > start:
            sink.write_frames(data if start == 0 and pos == size else data[start:pos])
        if pos < size:
            self._pending = bytearray(data[pos:])

    def _control(self, opcode: int, payload: bytes) -> bool:
        """Act on a control frame from the upstream; ``False``: stop reading this data."""
        if opcode == _PING:
            if not self._close_sent:
                self._send_frame(Opcode.PONG, payload)
            return True
        if opcode == _PONG:
            return True  # the gateway never pings its upstream (the upstream pings it)
        try:
            close = Close.parse(payload) if payload else Close(1005, "")
        except Exception:
            self._protocol_error("the upstream sent an invalid close frame")
            return False
        if not self._close_sent:  # the upstream closes: echo, then close the client alike
            self._send_frame(Opcode.CLOSE, payload)
            self._close_sent = True
            assert self._sink is not None
            self._sink.close_now(sendable(close.code), close.reason)
        self._closed = True
        self._abort_later()
        return False

    def _protocol_error(self, reason: str) -> None:
        self._fail(1002, 1011, reason)

    def _too_big(self) -> None:
        self._fail(1009, 1009, "frame too large")

    def _fail(self, upstream_code: int, client_code: int, reason: str) -> None:
        if not self._close_sent:
            self._send_frame(Opcode.CLOSE, Close(upstream_code, reason).serialize())
            self._close_sent = True
        self._closed = True
        if self._sink is not None:
            self._sink.close_now(client_code, reason)
        self._abort_later()

    # -- client -> upstream ----------------------------------------------------------

    async def send(self, data: str | bytes) -> bool:
        """Send one message upstream (text stays text); ``False``: the connection is closing."""
        if self._close_sent or self.transport is None or self.transport.is_closing():
            return False
        if isinstance(data, str):
            self._send_frame(Opcode.TEXT, data.encode())
        else:
            self._send_frame(Opcode.BINARY, data)
        if self._writable is not None:
            await asyncio.shield(self._writable)
        return not self._closed

    def _send_frame(self, opcode: Opcode, payload: bytes) -> None:
        self._write(Frame(opcode, payload).serialize(mask=True, extensions=()))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: a close frame, then up to :data:`CLOSE_TIMEOUT` seconds
        for the upstream's."""
        if self._closed or self.transport is None:
            self.abort()
            return
        if not self._close_sent:
            self._send_frame(Opcode.CLOSE, Close(code, reason).serialize())
            self._close_sent = True
        self.transport.resume_reading()  # its close must be read, even from a paused client
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._lost), CLOSE_TIMEOUT)
        self.abort()

    def abort(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.abort()

    def _abort_later(self) -> None:
        # The close frame just written goes out first: close() flushes, abort() would not.
        if self.transport is not None:
            self.transport.close()

    # -- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self._closed = self._closed, True
        if self._head is not None and not self._head.done():
            self._head.set_exception(ConnectionResetError("the upstream closed in the handshake"))
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if not was_closed and not self._close_sent and self._sink is not None:
            self._sink.close_now(*self._on_lost)

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def client_flow(self, paused: bool) -> None:
        """A :data:`FlowListener`: while the client cannot take more, the upstream is
        not read (it backs up there, where its per-client backlog decides)."""
        transport = self.transport
        if transport is None or self._closed:
            return
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()


_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}  # reserved codes never go on the wire


def sendable(code: int) -> int:
    """``code``, or what goes on the wire instead of a code reserved for local use."""
    return _UNSENDABLE.get(code, code)


def _tls() -> ssl.SSLContext:
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


def iter_frames(frames: bytes) -> list[tuple[bool, int, bytes]]:
    """``(fin, opcode, payload)`` of whole unmasked frames (the ASGI fallback reads them)."""
    out: list[tuple[bool, int, bytes]] = []
    pos, size = 0, len(frames)
    while pos < size:
        first, length = frames[pos], frames[pos + 1] & 0x7F
        head = 2
        if length == 126:
            length, head = (frames[pos + 2] << 8) | frames[pos + 3], 4
        elif length == 127:
            length, head = struct.unpack_from("!Q", frames, pos + 2)[0], 10
        start = pos + head
        out.append((bool(first & 0x80), first & 0x0F, frames[start : start + length]))
        pos = start + length
    return out
