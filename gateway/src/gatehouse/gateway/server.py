"""How the gateway is served: uvicorn with a guarded HTTP protocol and bounded WebSockets.

uvicorn reads request heads and bodies with no deadline and no bound on the
number or size of headers; one slow or hostile client could hold sockets open
forever or make the process parse (and the proxy walk) thousands of headers.
:class:`GuardedHttpProtocol` is uvicorn's httptools protocol with the edge's
limits on the wire, before any ASGI code runs:

* a request head must arrive whole within ``header_timeout`` seconds of the
  connection or of its first byte (slowloris), else ``408`` and close;
* a request body must arrive whole within ``body_timeout`` seconds, else ``408``
  (or a close when the response has started) and the request is abandoned;
* the request target may be ``max_url_bytes`` long (``414``), the head
  ``max_header_bytes`` (``431``) with at most ``max_header_count`` fields (``431``);
* malformed requests get a problem+json ``400`` instead of uvicorn's plain text.

Responses are written through :class:`HeadWithBody`: a response's head goes out in
the same ``send()`` as its body when that follows at once (a small proxied response
is one write to the socket instead of two, the largest single saving of CPU per
request), and uvicorn's access-log arguments are never built (the log is off).

The limits are read per connection from the gateway's current configuration, so
a reload applies them to new requests. WebSocket limits are uvicorn's own
(``ws_max_size``: the frame limit, checked from the frame header before the
payload is buffered) and are fixed when the server starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.exceptions import InvalidState

from gatehouse.common.errors import (
    BadRequest,
    GatehouseError,
    HeadersTooLarge,
    RequestTimeout,
    UriTooLong,
)
from gatehouse.common.problem import encode_problem
from gatehouse.common.ws_protocol import LeanWebSocketProtocol
from gatehouse.gateway.config import Limits
from gatehouse.gateway.edge.response import SECURITY_HEADERS
from gatehouse.gateway.proxy.ws_upstream import FRAME_SINK

LimitsSource = Callable[[], Limits]
COALESCE_MAX = 65_536  # a body this small is copied behind its head rather than sent apart


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the error is kept on the protocol."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines and size limits on request heads and bodies.

    One timer per connection at most, re-armed only when it fires early: a request
    moves a deadline (a float) instead of creating and cancelling a timer handle.
    """

    limits_source: LimitsSource = Limits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn.access is kept at WARNING, yet uvicorn builds its arguments (the quoted
        # path, the client address) for every response unless told there is no access log.
        self.access_log = False
        limits = self._limits = self.limits_source()
        self._head_limit = limits.max_header_bytes + limits.max_url_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._on_deadline: Callable[[], None] = self._head_timed_out
        self._in_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._refusal: GatehouseError | None = None

    # -- connection and deadlines ---------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writer = HeadWithBody(transport, self.loop)
        self._expect(self._limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def _stop_timer(self) -> None:
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expect(self, seconds: float, on_deadline: Callable[[], None]) -> None:
        """Call ``on_deadline`` unless ``_settle()`` comes within ``seconds``."""
        self._deadline = self.loop.time() + seconds
        self._on_deadline = on_deadline
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._tick)

    def _settle(self) -> None:
        self._deadline = None

    def _tick(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        if self.loop.time() < self._deadline:  # moved since the timer was set
            self._timer = self.loop.call_at(self._deadline, self._tick)
            return
        self._deadline = None
        self._on_deadline()

    def _head_timed_out(self) -> None:
        self._refuse(RequestTimeout("the request head did not arrive in time"))

    def _body_timed_out(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        cycle.disconnected = True  # the app's own response, if any, is dropped
        cycle.message_event.set()
        if cycle.response_started:  # nothing sensible to send: just stop
            self.transport.close()
            return
        self._refuse(RequestTimeout("the request body did not arrive in time"))

    # -- parsing --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._head_limit:
                self._refuse(HeadersTooLarge("request header fields too large"))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self._stop_timer()  # else it keeps this protocol alive for header_timeout
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            self._refuse(self._refusal or BadRequest("invalid HTTP request"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        if self._deadline is None:
            self._expect(self._limits.header_timeout, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self._limits.max_url_bytes:
            self._stop(UriTooLong(f"request target over {self._limits.max_url_bytes} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._limits.max_header_count:
            self._stop(HeadersTooLarge(f"more than {self._limits.max_header_count} header fields"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._settle()
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous and self.cycle is not None:  # a response to come
            self.cycle.transport = self._writer.next_response()  # type: ignore[assignment]
        if self._expects_body():
            self._expect(self._limits.body_timeout, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._settle()
        self._in_head = True  # what comes next on this connection is the next request's head
        self._head_bytes = 0
        super().on_message_complete()

    def _expects_body(self) -> bool:
        if self.parser.should_upgrade():
            return False
        for name, value in self.headers:
            if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                return True
        return False

    def _stop(self, error: GatehouseError) -> None:
        self._refusal = error
        raise _Refused

    def _refuse(self, error: GatehouseError) -> None:
        """Answer ``error`` as problem+json and close the connection."""
        self._settle()
        if self.transport.is_closing():
            return
        headers, body = encode_problem(error)
        lines = [b"HTTP/1.1 %d %s\r\n" % (error.status, error.title.encode())]
        for name, value in [*self.server_state.default_headers, *headers, *SECURITY_HEADERS]:
            lines.append(name + b": " + value + b"\r\n")
        lines.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(lines) + body)
        self.transport.close()


class HeadWithBody:
    """The transport a response is written to: its head goes out with the first body
    bytes in one write, one ``send()`` and one segment for a small response instead of
    two; a head with no body right behind it goes out at the end of the loop iteration.
    """

    __slots__ = ("_expect_head", "_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._expect_head = False

    def next_response(self) -> HeadWithBody:
        self._expect_head = True
        return self

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= COALESCE_MAX:
                self._transport.write(head + data)
                return
            self._transport.write(head)
        elif self._expect_head:
            self._expect_head = False
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()


class ProxiedWebSocketProtocol(LeanWebSocketProtocol):
    """uvicorn's sans-I/O WebSocket protocol holding little per idle socket
    (:class:`~gatehouse.common.ws_protocol.LeanWebSocketProtocol`), plus a way for the
    proxy to relay frames without decoding them.

    It is the proxy's :class:`~gatehouse.gateway.proxy.ws_upstream.FrameSink`,
    offered to the app as the :data:`FRAME_SINK` extension: whole server frames from
    the upstream are written to the transport as they came (the client gets the same
    bytes it would get from the upstream itself), and a close is written at once.
    uvicorn's own frames (pings, pongs, its close) are whole frames written between
    them. Reading from the client stays uvicorn's: its messages reach the app through
    ``receive`` as usual.
    """

    _flow: Callable[[bool], None] | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            self.scope["extensions"][FRAME_SINK] = self  # type: ignore[assignment]

    # -- FrameSink -------------------------------------------------------------------

    def write_frames(self, frames: bytes) -> None:
        if self.handshake_complete and not (self.close_sent or self.disconnected):
            self.transport.write(frames)

    def close_now(self, code: int, reason: str) -> None:
        """What ``send({"type": "websocket.close", ...})`` does, without waiting."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        try:
            self.conn.send_close(code, reason)
        except InvalidState:  # the client's own close is being answered
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def listen_flow(self, listener: Callable[[bool], None]) -> None:
        self._flow = listener
        if not self.writable.is_set():
            listener(True)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._flow is not None:
            self._flow(True)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._flow is not None:
            self._flow(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._flow = None
        super().connection_lost(exc)


def guarded_protocol(limits: LimitsSource) -> type[GuardedHttpProtocol]:
    """A protocol class that reads its limits from ``limits()`` for each connection."""
    return type(
        "GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits_source": staticmethod(limits)}
    )


def uvicorn_options(limits: LimitsSource) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` when it serves the gateway (uvicorn 0.54)."""
    current = limits()
    return {
        "http": guarded_protocol(limits),
        "ws": ProxiedWebSocketProtocol,  # sans-I/O: pauses reading until the app took each message
        "ws_max_size": current.max_ws_frame_bytes,
        "ws_max_queue": 1,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "timeout_keep_alive": 5,
        "proxy_headers": False,  # the gateway resolves X-Forwarded-For from trusted proxies
        "server_header": False,
    }
