"""Connections and channels: a broadcast that never waits for a slow client.

Each :class:`Connection` writes at once when nothing waits before the message and the
transport can take it without waiting; otherwise into a bounded send backlog, drained
by a writer task that exists only while messages wait.
:meth:`Hub.broadcast` is synchronous: it takes a message serialised once, wraps it in one
:class:`~gatehouse.realtime.frames.TextMessage` (framed once for all sockets) and offers
it to every subscriber without awaiting, so one stalled client cannot delay the
others. A client whose queue is full is closed with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from gatehouse.common.identity import Principal
from gatehouse.realtime import metrics
from gatehouse.realtime.frames import TextMessage

log = logging.getLogger("gatehouse.realtime")

# Close codes (RFC 6455 §7.4 and the private range): clients act on them.
POLICY_VIOLATION = 1008  # failed or missing authentication, sustained abuse
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012  # server going away: reconnect (to another replica)
TRY_AGAIN_LATER = 1013  # too slow to keep up: reconnect and refetch
TOKEN_EXPIRED = 4001  # access token expired without an ``auth`` refresh


class Transport(Protocol):
    """What a connection needs of a WebSocket (Starlette's ``WebSocket`` is one)."""

    async def send_text(self, data: str) -> None: ...

    def send_now(self, message: TextMessage) -> bool:
        """Write ``message`` at once when that needs no waiting; ``False``: not written."""
        ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code, self.reason = code, reason


class Connection:
    """One client: its principal, its channels and its bounded send backlog.

    An idle connection holds no task and no queue (memory per idle socket is a budget,
    DESIGN §11): a writer task exists only while messages wait, and ends when it has
    sent them. The backlog is bounded by ``offer``, so a close marker always fits.
    """

    __slots__ = (
        "__weakref__",
        "_backlog",
        "_close_timeout",
        "_done",
        "_limit",
        "_transport",
        "_writer",
        "channels",
        "close_code",
        "principal",
    )

    def __init__(
        self, transport: Transport, *, queue_size: int, close_timeout: float = 5.0
    ) -> None:
        self.principal: Principal | None = None
        self.channels: set[str] = set()
        self.close_code: int | None = None
        self._transport = transport
        self._limit = queue_size
        self._close_timeout = close_timeout
        self._backlog: deque[str | TextMessage | list[str] | _Close] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def closing(self) -> bool:
        return self.close_code is not None or self._done.done()

    @property
    def backlog(self) -> int:
        """How many slots wait for the writer task (0: a message goes to the socket at once
        when the transport can take it)."""
        return len(self._backlog) if self._backlog else 0

    @property
    def done(self) -> asyncio.Future[None]:
        """Resolves once the connection is finished (closed by us or gone)."""
        return self._done

    def offer(self, text: str | TextMessage | list[str]) -> bool:
        """Write a message at once, else queue it (or several, as one slot), without
        waiting; a full backlog closes the connection (1013). Never written before the
        messages already queued: while any wait, the writer task sends in order."""
        if self.closing:
            return False
        if self._backlog is not None and len(self._backlog) >= self._limit:
            metrics.SLOW_CONSUMERS.inc()
            self.close(TRY_AGAIN_LATER, "send queue full", flush=False)
            return False
        if self._writer is None and not isinstance(text, list):
            message = text if isinstance(text, TextMessage) else TextMessage(text)
            if self._transport.send_now(message):
                return True  # nothing queued before it, and the transport took it: no task
        self._push(text)
        return True

    def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        """Close with ``code``: after the queued messages when ``flush``, else at once."""
        if self.closing:
            return
        self.close_code = code
        if flush:
            self._push(_Close(code, reason))
            # A stalled peer never drains the backlog: close anyway after close_timeout.
            loop = asyncio.get_running_loop()
            loop.call_later(self._close_timeout, self._close_now, code, reason)
        else:
            self._close_now(code, reason)

    def _push(self, item: str | TextMessage | list[str] | _Close) -> None:
        if self._backlog is None:
            self._backlog = deque()
        self._backlog.append(item)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    def _close_now(self, code: int, reason: str) -> None:
        if self._done.done():
            return
        if self._writer is not None:
            self._writer.cancel()
        self._backlog = None
        self._writer = asyncio.get_running_loop().create_task(self._send_close(code, reason))

    def abandon(self) -> None:
        """The peer is gone: stop writing, nothing to send."""
        if self._writer is not None:
            self._writer.cancel()
        self._backlog = None
        self._finish()

    async def _drain(self) -> None:
        try:
            while self._backlog:
                item = self._backlog.popleft()
                if isinstance(item, _Close):
                    await self._send_close(item.code, item.reason)
                    return
                if isinstance(item, str):
                    await self._transport.send_text(item)
                    continue
                if isinstance(item, TextMessage):
                    await self._transport.send_text(item.text)
                    continue
                for text in item:  # a replay: many messages in one slot of the backlog
                    await self._transport.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away mid-send: nothing left to tell it
            self._finish()
        finally:
            if asyncio.current_task() is self._writer:
                self._writer = None
                if not self._backlog:
                    self._backlog = None  # idle again: nothing held

    async def _send_close(self, code: int, reason: str) -> None:
        # A stalled peer can block even the close frame; give up after close_timeout.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._close_timeout):
                await self._transport.close(code, reason)
        self._finish()

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)


class Hub:
    """Every connection of this process and the subscribers of each channel."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self._channels: dict[str, set[Connection]] = {}

    def add(self, conn: Connection) -> None:
        self.connections.add(conn)
        metrics.CONNECTIONS.inc()

    def remove(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        metrics.CONNECTIONS.dec()
        for channel in list(conn.channels):
            self.unsubscribe(conn, channel)

    def subscribe(self, conn: Connection, channel: str) -> None:
        if channel not in conn.channels:
            conn.channels.add(channel)
            self._channels.setdefault(channel, set()).add(conn)
            metrics.SUBSCRIPTIONS.inc()

    def unsubscribe(self, conn: Connection, channel: str) -> None:
        if channel not in conn.channels:
            return
        conn.channels.discard(channel)
        metrics.SUBSCRIPTIONS.dec()
        subscribers = self._channels.get(channel)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self._channels[channel]

    def subscribers(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def broadcast(self, channel: str, text: str) -> int:
        """Offer ``text`` to every subscriber of ``channel`` (one frame for all of them);
        never awaits. Returns the count."""
        delivered = 0
        message = TextMessage(text)
        for conn in self._channels.get(channel, ()):
            delivered += conn.offer(message)
        metrics.MESSAGES_OUT_EVENT.inc(delivered)
        return delivered

    async def close_all(self, code: int, reason: str = "") -> None:
        """Close every connection (shutdown: 1012) and wait until they are finished."""
        connections = list(self.connections)
        for conn in connections:
            conn.close(code, reason, flush=False)
        await _wait_all(conn.done for conn in connections)


def event_frame(channel: str, event_json: str) -> str:
    """``{"type": "event", "channel": ..., "event": {...}}`` around ready-made event JSON."""
    return f'{{"type":"event","channel":{json.dumps(channel)},"event":{event_json}}}'


async def _wait_all(futures: Iterable[asyncio.Future[None]]) -> None:
    pending = list(futures)
    if pending:
        await asyncio.wait(pending)
