"""The WebSocket proxy: authenticate, accept, open the upstream socket, pipe frames both ways.

* A handshake without ``Authorization`` (browsers cannot set it) is accepted, but
  the gateway itself then expects the first-message auth of DESIGN §12
  (``{"type": "auth", "token": ...}`` or ``{"op": "auth", ...}``) within
  ``ws_auth_timeout`` seconds and ``ws_auth_max_bytes``; it verifies the token and
  only then opens the upstream socket and forwards that message. An anonymous
  socket costs no upstream connection and can send nothing else.
* One user may hold ``websockets.max_per_user`` sockets at once (1008 beyond).
* When the upstream is down, refuses or its breaker is open, the client is
  accepted and closed with ``1013`` (try again later), or ``1012`` when the
  upstream answered 503 (restarting/draining), with a reason: browsers cannot
  read an HTTP status of a failed handshake.
* When the upstream's connection is lost without a close frame (the process died,
  its host went away), the client is closed with ``1012`` (service restart) and a
  reason, never 1006/1011: the client reconnects, to another replica or the restarted one.
* Text stays text, binary stays binary; a close from either side closes the other
  with the same code and reason; a frame over the limit closes both (1009).
* A socket whose session is revoked is closed (1008 ``session revoked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from websockets.exceptions import InvalidHandshake

from gatehouse.common import tracing
from gatehouse.common.errors import GatehouseError
from gatehouse.common.identity import Principal
from gatehouse.common.types import Message, Receive, Send
from gatehouse.gateway.breaker import BreakerOpen
from gatehouse.gateway.config import GatewayConfig
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.edge.policy import EdgePolicy
from gatehouse.gateway.metrics import WS_CONNECTIONS, WS_HANDSHAKES_SHED, WS_HANDSHAKES_WAITING
from gatehouse.gateway.proxy.headers import websocket_headers
from gatehouse.gateway.proxy.http import TRACE_HEADERS, target_path
from gatehouse.gateway.proxy.upstream import UNHEALTHY, UpstreamPool
from gatehouse.gateway.proxy.ws_upstream import (
    FRAME_SINK,
    FlowListener,
    FrameSink,
    UpstreamRefused,
    UpstreamSocket,
    iter_frames,
    sendable,
)

log = logging.getLogger("gatehouse.gateway.websocket")
_ASGI_BACKLOG = 64  # frames queued for a client served without FRAME_SINK before pausing
POLICY_VIOLATION = 1008
TOO_BIG = 1009
RESTARTING = 1012
TRY_AGAIN_LATER = 1013
_background: set[asyncio.Future[None]] = set()


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class LiveSockets:
    """Open proxied sockets by user and session: the per-user limit and revocation closes."""

    def __init__(self) -> None:
        self.by_subject: dict[str, set[_Pipe]] = defaultdict(set)

    def count(self, subject: str) -> int:
        return len(self.by_subject.get(subject, ()))

    def add(self, pipe: _Pipe) -> None:
        self.by_subject[pipe.principal.subject].add(pipe)

    def remove(self, pipe: _Pipe) -> None:
        pipes = self.by_subject.get(pipe.principal.subject)
        if pipes is not None:
            pipes.discard(pipe)
            if not pipes:
                del self.by_subject[pipe.principal.subject]

    def close_revoked(self, is_revoked: Any) -> int:
        """Close every socket whose principal ``is_revoked`` now; how many were closed."""
        closed = 0
        for pipes in list(self.by_subject.values()):
            for pipe in list(pipes):
                if is_revoked(pipe.principal):
                    pipe.revoke()
                    closed += 1
        return closed


class WebSocketProxy:
    def __init__(
        self,
        upstreams: dict[str, UpstreamPool],
        policy: EdgePolicy,
        config: GatewayConfig,
        live: LiveSockets,
    ) -> None:
        self.upstreams = upstreams
        self.policy = policy
        self.limits = config.limits
        self.max_per_user = config.websockets.max_per_user
        self.handshake_wait = config.websockets.handshake_wait
        # Upstream handshakes under way at once, per upstream: a reconnect storm (a
        # realtime replica drained, its clients all coming back) queues here in order
        # instead of piling onto the upstream until handshakes time out, feed the
        # breaker and send everyone away with 1013 to try again (and again).
        self.turns = {
            name: asyncio.Semaphore(config.websockets.handshakes_in_flight) for name in upstreams
        }
        self.live = live

    async def __call__(self, ex: Exchange, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        route = ex.route
        assert route is not None
        first: Message | None = None
        if ex.principal is None:  # first-message auth: no upstream work before it
            await send({"type": "websocket.accept", "subprotocol": _subprotocol(ex)})
            accepted = True
            try:
                first, ex.principal = await self._first_message_auth(ex, receive)
            except _Refused as refused:
                await _close(send, refused.code, refused.reason)
                return
        else:
            accepted = False
        principal = ex.principal
        if self.live.count(principal.subject) >= self.max_per_user:
            await self._refuse(
                send, accepted, POLICY_VIOLATION, "too many connections for this user"
            )
            return
        upstream = self.upstreams[route.upstream]
        try:
            ws = await self._connect(upstream, ex)
        except _Refused as refused:
            await self._refuse(send, accepted, refused.code, refused.reason)
            return
        try:
            if not accepted:
                await send({"type": "websocket.accept", "subprotocol": ws.subprotocol})
            await self._relay(ex, receive, send, ws, first, upstream.name)
        finally:
            await ws.close()

    async def _relay(
        self,
        ex: Exchange,
        receive: Receive,
        send: Send,
        ws: UpstreamSocket,
        first: Message | None,
        upstream: str,
    ) -> None:
        # An idle socket may live for hours: keep no copy of the handshakes' headers.
        ex.passed, ex.authorization, ex.scope["headers"] = [], None, []
        sink = ex.scope.get("extensions", {}).get(FRAME_SINK) or _AsgiSink(send)
        assert ex.principal is not None
        pipe = _Pipe(receive, sink, ws, self.limits.max_ws_frame_bytes, ex.principal)
        self.live.add(pipe)
        WS_CONNECTIONS.inc()
        try:
            if first is not None:
                await ws.send(first.get("text") or first.get("bytes") or b"")
            ws.attach(sink, (RESTARTING, f"{upstream} connection lost, reconnect"))
            await pipe.run()
        finally:
            WS_CONNECTIONS.dec()
            self.live.remove(pipe)
            if isinstance(sink, _AsgiSink):
                await sink.finish()

    async def _refuse(self, send: Send, accepted: bool, code: int, reason: str) -> None:
        if not accepted:
            await send({"type": "websocket.accept"})
        await _close(send, code, reason)

    async def _first_message_auth(
        self, ex: Exchange, receive: Receive
    ) -> tuple[Message, Principal]:
        try:
            async with asyncio.timeout(self.limits.ws_auth_timeout):
                message = await receive()
        except TimeoutError:
            raise _Refused(POLICY_VIOLATION, "authentication timeout") from None
        if message["type"] != "websocket.receive":
            raise _Refused(1000, "")
        data = message.get("text") or message.get("bytes") or b""
        if len(data) > self.limits.ws_auth_max_bytes:
            raise _Refused(TOO_BIG, "the auth message is too large")
        token = _auth_token(data)
        if token is None:
            raise _Refused(POLICY_VIOLATION, 'authenticate first: {"type": "auth", "token": ...}')
        ex.authorization = b"Bearer " + token.encode()
        try:
            await self.policy.identify(ex)
            if ex.auth_error is not None:
                raise ex.auth_error
            assert ex.principal is not None
            assert ex.route is not None
            self.policy.check_roles(ex.route, "GET", ex.principal)
        except GatehouseError as exc:
            raise _Refused(POLICY_VIOLATION, exc.code) from None
        return message, ex.principal

    async def _connect(self, upstream: UpstreamPool, ex: Exchange) -> UpstreamSocket:
        assert ex.route is not None
        try:
            upstream.breaker.admit()
        except BreakerOpen:
            raise _Refused(
                TRY_AGAIN_LATER, f"{upstream.name} is unavailable, retry later"
            ) from None
        turn = self.turns[upstream.name]
        if turn.locked():
            await self._wait_for(turn, upstream.name)
        else:
            await turn.acquire()
        try:
            if tracing.state.on:
                return await self._open_traced(upstream, ex)
            return await self._open(upstream, ex, websocket_headers(ex))
        finally:
            turn.release()

    async def _open_traced(self, upstream: UpstreamPool, ex: Exchange) -> UpstreamSocket:
        """The upstream handshake as a SERVER span (joining a trusted proxy's trace) with a
        CLIENT span whose context the upstream gets. Only the handshake: a socket may live
        for hours, its frames are not traced."""
        assert ex.route is not None
        parent = None
        if ex.peer_trusted:
            parent = dict(ex.scope["headers"]).get(b"traceparent", b"").decode("latin-1") or None
        name = f"WS {ex.route.prefix}"
        attributes = {"url.path": ex.path, "client.address": ex.client_ip}
        with (
            tracing.span(
                "gateway", name, kind=SpanKind.SERVER, parent=parent, attributes=attributes
            ),
            tracing.span("gateway", name, kind=SpanKind.CLIENT) as span,
        ):
            span.set_attribute("gatehouse.upstream", upstream.name)
            headers = [h for h in websocket_headers(ex) if h[0] not in TRACE_HEADERS]
            headers += tracing.inject({}).items()
            try:
                return await self._open(upstream, ex, headers)
            except _Refused as refused:
                span.set_attribute("gatehouse.websocket.close_code", refused.code)
                span.set_status(Status(StatusCode.ERROR, refused.reason))
                raise

    async def _wait_for(self, turn: asyncio.Semaphore, upstream: str) -> None:
        waiting = WS_HANDSHAKES_WAITING.labels(upstream)
        waiting.inc()
        try:
            async with asyncio.timeout(self.handshake_wait):
                await turn.acquire()
        except TimeoutError:
            WS_HANDSHAKES_SHED.labels(upstream).inc()
            raise _Refused(TRY_AGAIN_LATER, f"{upstream} is busy, retry later") from None
        finally:
            waiting.dec()

    async def _open(
        self, upstream: UpstreamPool, ex: Exchange, headers: list[tuple[str, str]]
    ) -> UpstreamSocket:
        assert ex.route is not None
        replica = upstream.pick()
        scheme = "wss" if replica.base.startswith("https") else "ws"
        url = f"{scheme}://{replica.netloc}{target_path(ex.route, ex)}"
        try:
            async with asyncio.timeout(upstream.config.timeouts.connect):
                ws = await UpstreamSocket.open(
                    url,
                    headers,
                    ex.scope.get("subprotocols") or None,
                    self.limits.max_ws_frame_bytes,
                )
        except UpstreamRefused as exc:
            upstream.breaker.record(failed=exc.status in UNHEALTHY)
            if exc.status == 503:
                raise _Refused(RESTARTING, f"{upstream.name} is restarting, reconnect") from None
            if exc.status in (401, 403):
                raise _Refused(POLICY_VIOLATION, "refused by the upstream") from None
            raise _Refused(TRY_AGAIN_LATER, f"{upstream.name} refused ({exc.status})") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            upstream.breaker.record(failed=True)
            if isinstance(exc, OSError):
                upstream.eject(replica, f"WebSocket connect failed ({exc!r})")
            raise _Refused(
                TRY_AGAIN_LATER, f"{upstream.name} is unavailable, retry later"
            ) from None
        upstream.breaker.record(failed=False)
        upstream.healthy(replica)
        return ws


class _Pipe:
    """One proxied connection. The upstream's frames reach the client from the
    upstream connection's callbacks (:class:`UpstreamSocket`); this reads the client:
    one task per socket, which waits in ``receive`` while the socket is idle."""

    __slots__ = ("client_closed", "max_bytes", "principal", "receive", "sink", "ws")

    def __init__(
        self,
        receive: Receive,
        sink: FrameSink,
        ws: UpstreamSocket,
        max_bytes: int,
        principal: Principal,
    ) -> None:
        self.receive = receive
        self.sink = sink
        self.ws = ws
        self.max_bytes = max_bytes
        self.principal = principal
        self.client_closed = False

    async def run(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                self.client_closed = True
                code = sendable(message.get("code", 1000))
                await self.ws.close(code, message.get("reason") or "")
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > self.max_bytes:
                self.sink.close_now(TOO_BIG, "frame too large")
                await self.ws.close(1001, "client sent a frame too large")
                return
            if not await self.ws.send(data):
                return

    def revoke(self) -> None:
        self.sink.close_now(POLICY_VIOLATION, "session revoked")
        _background.add(task := asyncio.ensure_future(self.ws.close(1000, "session revoked")))
        task.add_done_callback(_background.discard)


class _AsgiSink:
    """The client's side through plain ASGI ``send``, for a server that does not offer
    :data:`FRAME_SINK`: frames are decoded into messages and sent by a task that
    exists while messages wait (reading the upstream pauses while too many do)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.waiting: list[Message] = []
        self.partial: list[bytes] = []
        self.partial_text = False
        self.task: asyncio.Task[None] | None = None
        self.flow: FlowListener | None = None
        self.paused = False
        self.closed = False

    def write_frames(self, frames: bytes) -> None:
        for fin, opcode, payload in iter_frames(frames):
            if opcode != 0:  # a message starts (text 1, binary 2); 0 continues it
                self.partial, self.partial_text = [], opcode == 1
            self.partial.append(payload)
            if fin:
                data = b"".join(self.partial)
                self.partial = []
                if self.partial_text:
                    self._queue({"type": "websocket.send", "text": data.decode()})
                else:
                    self._queue({"type": "websocket.send", "bytes": data})

    def close_now(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._queue({"type": "websocket.close", "code": code, "reason": reason[:120]})

    def listen_flow(self, listener: FlowListener) -> None:
        self.flow = listener

    def _queue(self, message: Message) -> None:
        self.waiting.append(message)
        if len(self.waiting) >= _ASGI_BACKLOG and not self.paused and self.flow is not None:
            self.paused = True
            self.flow(True)
        if self.task is None:
            self.task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self.waiting:
                message = self.waiting.pop(0)
                with contextlib.suppress(OSError, RuntimeError):  # the client may be gone
                    await self.send(message)
                if self.paused and len(self.waiting) < _ASGI_BACKLOG // 2 and self.flow:
                    self.paused = False
                    self.flow(False)
        finally:
            self.task = None

    async def finish(self) -> None:
        """Wait for what is queued (the upstream's close among it) to be sent."""
        if self.task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.task), 3)


async def _close(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
        await send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def _subprotocol(ex: Exchange) -> str | None:
    offered = ex.scope.get("subprotocols") or []
    return str(offered[0]) if offered else None


def _auth_token(data: str | bytes) -> str | None:
    try:
        frame = json.loads(data)
    except ValueError:
        return None
    if not isinstance(frame, dict):
        return None
    if frame.get("type") != "auth" and frame.get("op") != "auth":
        return None
    token = frame.get("token")
    return token if isinstance(token, str) and token else None
