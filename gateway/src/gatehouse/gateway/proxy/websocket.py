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

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gatehouse.common.errors import GatehouseError
from gatehouse.common.identity import Principal
from gatehouse.common.types import Message, Receive, Send
from gatehouse.gateway.breaker import BreakerOpen
from gatehouse.gateway.config import GatewayConfig
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.edge.policy import EdgePolicy
from gatehouse.gateway.metrics import WS_CONNECTIONS
from gatehouse.gateway.proxy.headers import websocket_headers
from gatehouse.gateway.proxy.http import target_path
from gatehouse.gateway.proxy.upstream import UNHEALTHY, UpstreamPool

log = logging.getLogger("gatehouse.gateway.websocket")
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}  # reserved codes never go on the wire
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
        if not accepted:
            await send({"type": "websocket.accept", "subprotocol": ws.subprotocol})
        # An idle socket may live for hours: keep no copy of the handshakes' headers.
        ex.passed, ex.authorization, ex.scope["headers"] = [], None, []
        ws.request = None
        if ws.response is not None:  # kept: the client library tells the handshake by it
            ws.response.headers.clear()
        pipe = _Pipe(receive, send, ws, self.limits.max_ws_frame_bytes, principal, upstream.name)
        self.live.add(pipe)
        WS_CONNECTIONS.inc()
        try:
            if first is not None:
                await ws.send(first.get("text") or first.get("bytes") or b"")
            await pipe.run()
        except ConnectionClosed:
            await pipe.close_client(*_close_of_ws(ws, upstream.name))
        finally:
            WS_CONNECTIONS.dec()
            self.live.remove(pipe)
            await ws.close()

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

    async def _connect(self, upstream: UpstreamPool, ex: Exchange) -> ClientConnection:
        assert ex.route is not None
        try:
            upstream.breaker.admit()
        except BreakerOpen:
            raise _Refused(
                TRY_AGAIN_LATER, f"{upstream.name} is unavailable, retry later"
            ) from None
        replica = upstream.pick()
        scheme = "wss" if replica.base.startswith("https") else "ws"
        url = f"{scheme}://{replica.netloc}{target_path(ex.route, ex)}"
        try:
            ws = await connect(
                url,
                additional_headers=websocket_headers(ex),
                subprotocols=ex.scope.get("subprotocols") or None,
                compression=None,
                max_size=self.limits.max_ws_frame_bytes,
                max_queue=1,
                write_limit=self.limits.max_ws_frame_bytes,
                ping_interval=None,  # the server side pings the client; realtime pings us
                close_timeout=2,
                open_timeout=upstream.config.timeouts.connect,
                user_agent_header=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            upstream.breaker.record(failed=status in UNHEALTHY)
            if status == 503:
                raise _Refused(RESTARTING, f"{upstream.name} is restarting, reconnect") from None
            if status in (401, 403):
                raise _Refused(POLICY_VIOLATION, "refused by the upstream") from None
            raise _Refused(TRY_AGAIN_LATER, f"{upstream.name} refused ({status})") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            upstream.breaker.record(failed=True)
            if isinstance(exc, OSError):
                upstream.eject(replica)
            raise _Refused(
                TRY_AGAIN_LATER, f"{upstream.name} is unavailable, retry later"
            ) from None
        upstream.breaker.record(failed=False)
        upstream.healthy(replica)
        return ws


class _Pipe:
    """Both directions of one proxied connection: this task reads the client, one task
    reads the upstream (the fewest tasks per idle socket)."""

    __slots__ = ("client_closed", "max_bytes", "principal", "receive", "send", "upstream", "ws")

    def __init__(
        self,
        receive: Receive,
        send: Send,
        ws: ClientConnection,
        max_bytes: int,
        principal: Principal,
        upstream: str,
    ) -> None:
        self.upstream = upstream
        self.receive = receive
        self.send = send
        self.ws = ws
        self.max_bytes = max_bytes
        self.principal = principal
        self.client_closed = False

    async def run(self) -> None:
        reader = asyncio.create_task(self._upstream_to_client())
        try:
            await self._client_to_upstream()
            # Both sides are closing now; the reader relays the upstream's close code.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 3)
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    def revoke(self) -> None:
        _background.add(task := asyncio.ensure_future(self._revoked()))
        task.add_done_callback(_background.discard)

    async def _revoked(self) -> None:
        await self.close_client(POLICY_VIOLATION, "session revoked")
        with contextlib.suppress(Exception):
            await self.ws.close(1000, "session revoked")

    async def _client_to_upstream(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                self.client_closed = True
                code = _sendable(message.get("code", 1000))
                await self.ws.close(code, message.get("reason") or "")
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > self.max_bytes:
                await self.close_client(TOO_BIG, "frame too large")
                await self.ws.close(1001, "client sent a frame too large")
                return
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                return

    async def _upstream_to_client(self) -> None:
        try:
            async for data in self.ws:
                key = "text" if isinstance(data, str) else "bytes"
                await self.send({"type": "websocket.send", key: data})
        except ConnectionClosed:
            pass
        await self.close_client(*_close_of_ws(self.ws, self.upstream))

    async def close_client(self, code: int, reason: str) -> None:
        if self.client_closed:
            return
        self.client_closed = True
        await _close(self.send, code, reason)


async def _close(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
        await send({"type": "websocket.close", "code": code, "reason": reason[:120]})


def _close_of_ws(ws: ClientConnection, upstream: str) -> tuple[int, str]:
    """The close to give the client: the upstream's own, or 1012 when it just vanished."""
    protocol = ws.protocol
    frame: Any = protocol.close_rcvd if protocol.close_rcvd is not None else protocol.close_sent
    if frame is None:
        return RESTARTING, f"{upstream} connection lost, reconnect"
    return _sendable(frame.code), frame.reason


def _sendable(code: int) -> int:
    return _UNSENDABLE.get(code, code)


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
