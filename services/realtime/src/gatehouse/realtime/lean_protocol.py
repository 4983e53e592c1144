"""Realtime's uvicorn WebSocket protocol: the kit's lean one
(:class:`gatehouse.common.ws_protocol.LeanWebSocketProtocol`: little held per idle
socket) plus a synchronous write of a frame built once for every subscriber."""

from __future__ import annotations

from websockets.http11 import Request
from websockets.protocol import State

from gatehouse.common import ws_protocol
from gatehouse.realtime.frames import TextMessage

SEND_NOW = "gatehouse.websocket.send_now"
"""The ASGI extension (``scope["extensions"]``) of :meth:`LeanWebSocketProtocol.send_now`."""


class LeanWebSocketProtocol(ws_protocol.LeanWebSocketProtocol):
    """``ws`` for ``uvicorn.Config`` (see :func:`gatehouse.realtime.server.uvicorn_ws_options`).

    Besides ASGI's ``send``, it offers the app a synchronous write as an ASGI extension
    (:data:`SEND_NOW`): a broadcast to 10,000 sockets then costs 10,000 writes of one
    frame built once, not 10,000 tasks, encodings and framings.
    """

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
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
