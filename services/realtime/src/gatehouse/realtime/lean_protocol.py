"""uvicorn's sans-I/O WebSocket protocol, without what an idle socket need not hold.

Memory per idle socket is a budget (DESIGN §11). uvicorn's protocol keeps, for the
life of every connection, the parsed handshake request and the response (their
``Headers``: ~3-5 KB with the gateway's forwarded headers, besides the copy in the
ASGI scope), an ``asyncio.Queue`` for inbound messages (three deques and an
``Event``: ~3 KB) and an ``asyncio.Event`` for write pauses (~0.8 KB). This subclass
drops the handshake once it is done and replaces the queue and the event with
small objects that hold a future only while someone waits. Everything else,
including the wire protocol and keep-alive pings, is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from gatehouse.realtime.frames import TextMessage


class _Inbox:
    """The part of ``asyncio.Queue`` uvicorn uses (``put_nowait``, ``get``, ``empty``),
    for one reader: a list while messages wait, a future while the reader waits."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.pop(0)
        if not self._items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items


class _Gate:
    """The part of ``asyncio.Event`` uvicorn uses for write pauses (``set``, ``clear``,
    ``wait``); a future exists only while the transport is paused and someone waits."""

    __slots__ = ("_open", "_waiter")

    def __init__(self) -> None:
        self._open = True
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._open = True
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    def clear(self) -> None:
        self._open = False

    def is_set(self) -> bool:
        return self._open

    async def wait(self) -> None:
        while not self._open:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            # Shielded: one cancelled sender must not cancel the others' wait.
            await asyncio.shield(self._waiter)


SEND_NOW = "gatehouse.websocket.send_now"
"""The ASGI extension (``scope["extensions"]``) of :meth:`LeanWebSocketProtocol.send_now`."""


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """``ws`` for ``uvicorn.Config`` (see :func:`gatehouse.realtime.server.uvicorn_ws_options`).

    Besides ASGI's ``send``, it offers the app a synchronous write as an ASGI extension
    (:data:`SEND_NOW`): a broadcast to 10,000 sockets then costs 10,000 writes of one
    frame built once, not 10,000 tasks, encodings and framings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Gate()  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The app reads the handshake from the scope; uvicorn never looks at it again.
        # websockets' parser keeps the request for the socket's life (a local of its
        # suspended generator): empty its headers rather than letting them stay.
        event.headers.clear()
        self.request = None  # type: ignore[assignment]
        if self.handshake_initiated and not self.close_sent:
            # Fixed from the handshake on: whether an extension (permessage-deflate) was
            # negotiated, whether websockets logs every frame. With either, websockets
            # must frame each message itself; decided here, not per message.
            shared = not self.conn.extensions and not self.conn.debug
            write = self.send_now if shared else self.send_now_framed
            self.scope["extensions"][SEND_NOW] = write  # type: ignore[assignment]

    def _open_and_writable(self) -> bool:
        """Open (handshake done, no close sent or received, the peer there) and the
        transport not paused: a frame written now goes out in order."""
        return not (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or not self.writable.is_set()
            or self.initial_response is not None
            or self.transport.is_closing()
        )

    def send_now(self, message: TextMessage) -> bool:
        """Write a text message at once if that needs no waiting (the socket open, the
        transport not paused); ``False``: nothing written, use ``send``.

        The frame is the message's own, built once for all sockets. websockets' sans-I/O
        protocol keeps no state about the data frames it sends (only a fragmented send in
        progress, which uvicorn never starts, and the close frame), so writing a frame it
        did not serialise leaves it consistent; and uvicorn writes websockets' output as
        soon as a call produces it (after a send, a ping, a received ping or close), so
        none is pending here to go before this frame. Not touching websockets' object per
        message is a third of what a subscriber costs realtime's Python (bench/RESULTS.md).

        A close received from the peer: uvicorn answers and closes the transport at once
        (``is_closing``); one websockets failed on a protocol error: ``close_sent``.
        """
        if not self._open_and_writable():
            return False
        self.transport.write(message.frame)
        return True

    def send_now_framed(self, message: TextMessage) -> bool:
        """:meth:`send_now` with websockets framing the text (an extension negotiated,
        or its frame log on)."""
        if not self._open_and_writable() or self.conn.state is not State.OPEN:
            return False
        self.conn.send_text(message.text.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and self.__dict__.get("response") is not None:
            self.response = None  # type: ignore[assignment]  # sent: no longer needed
