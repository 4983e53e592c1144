"""``GET /ws``: the WebSocket endpoint, glue between Starlette and the protocol.

Authentication is the forwarded ``Authorization: Bearer`` header at the handshake
(a bad one: accept, then close 1008), or, without a header, a first
``auth`` message within ``auth_timeout`` (browsers cannot set headers; tokens never
travel in URLs). The reader runs in its own task so that a connection closed by
the server (slow consumer, expiry, shutdown) ends even when the peer is stalled.

The socket is served before ServiceMiddleware (see :class:`~gatehouse.realtime.app.RealtimeApp`),
so it does here what the middleware does for a request (issue #6): its request id (a
trusted peer's ``X-Request-ID``, else a new one) is current in the connection's task, so
every line logged for it carries it, and one access line (``GET /ws``, the close code as
status, duration, user) is written on ``gatehouse.access`` when it closes. Per socket that
costs the request's small record and a float, no task and no dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from gatehouse.common import tracing
from gatehouse.common.errors import GatehouseError, ServiceUnavailable
from gatehouse.common.identity import Principal
from gatehouse.common.requests import TrustedPeers, incoming_request_id, serving
from gatehouse.common.tokens import JWTVerifier, bearer_token
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.realtime.calls import Calls, Peer
from gatehouse.realtime.frames import TextMessage
from gatehouse.realtime.history import History
from gatehouse.realtime.hub import (
    POLICY_VIOLATION,
    SERVICE_RESTART,
    TRY_AGAIN_LATER,
    Connection,
    Hub,
)
from gatehouse.realtime.intake import Intake
from gatehouse.realtime.lean_protocol import SEND_NOW
from gatehouse.realtime.protocol import Session
from gatehouse.realtime.registry import Registry
from gatehouse.realtime.settings import RealtimeSettings

access = logging.getLogger("gatehouse.access")

WS_ROUTE = "/ws"
ABNORMAL_CLOSURE = 1006  # no close frame seen (RFC 6455 7.4.1)
_PEER_HEADERS = frozenset({b"x-forwarded-for", b"traceparent", b"user-agent"})
_TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass
class Runtime:
    """What the endpoint needs; the verifier is set by the app's lifespan."""

    settings: RealtimeSettings
    intake: Intake
    calls: Calls
    trusted: TrustedPeers
    verifier: JWTVerifier | None = None
    accepting: bool = True

    @classmethod
    def of(cls, settings: RealtimeSettings, methods: Registry) -> Runtime:
        history = History(
            size=settings.history_size,
            ttl=settings.history_ttl,
            max_events=settings.history_max_events,
        )
        intake = Intake(Hub(), history, remember_ids=settings.remember_event_ids)
        calls = Calls(
            methods, timeout=settings.call_timeout, max_in_flight=settings.max_calls_in_flight
        )
        return cls(settings, intake, calls, TrustedPeers(settings.trusted_proxies))

    @property
    def hub(self) -> Hub:
        return self.intake.hub

    async def verify(self, token: str) -> Principal:
        # Without keys the verifier answers "try later" (503), never "forged" (401).
        if self.verifier is None:
            raise ServiceUnavailable("the issuer's signing keys are not loaded")
        return await self.verifier.verify(token)


class AsgiSocket:
    """The :class:`~gatehouse.realtime.hub.Transport` of a connection: raw ASGI messages."""

    __slots__ = ("_now", "_send")

    def __init__(self, send: Send, now: Callable[[TextMessage], bool] | None = None) -> None:
        self._send, self._now = send, now

    def send_now(self, message: TextMessage) -> bool:
        return self._now is not None and self._now(message)

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept"})

    async def send_text(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})


async def serve_websocket(scope: Scope, receive: Receive, send: Send, runtime: Runtime) -> None:
    """Serve one WebSocket of ``GET /ws`` until it is finished; one access line at its end
    (one coroutine, no helper frame held for the socket's life)."""
    if (await receive())["type"] != "websocket.connect":
        return
    start = time.perf_counter()
    code = ABNORMAL_CLOSURE  # the close code: sent by us, else the peer's
    with serving(incoming_request_id(scope, runtime.trusted)) as request:
        try:
            socket = AsgiSocket(send, scope.get("extensions", {}).get(SEND_NOW))
            principal = None
            token = bearer_token(_header(scope, b"authorization"))
            with _handshake_span(scope, runtime) as span:
                if not runtime.accepting:  # shutting down: go to another replica
                    code = SERVICE_RESTART
                    await _refuse(socket, code, "server restarting", span)
                    return
                if token is not None:
                    try:
                        principal = await runtime.verify(token)
                    except GatehouseError as exc:  # 401 bad token, 503 issuer keys unavailable
                        code = TRY_AGAIN_LATER if exc.status >= 500 else POLICY_VIOLATION
                        await _refuse(socket, code, exc.detail, span)
                        return
                await socket.accept()
            conn = Connection(
                socket,
                queue_size=runtime.settings.send_queue_size,
                close_timeout=runtime.settings.close_timeout,
            )
            runtime.hub.add(conn)
            peer = peer_of(scope, runtime.trusted)
            # Read: the headers (the bearer token, the gateway's forwarded ones: 2-3 KB) need
            # not stay for the life of an idle socket (DESIGN §11 budget).
            scope["headers"] = ()
            session = Session(
                conn, runtime.intake, runtime.verify, runtime.settings, runtime.calls, peer
            )
            if principal is None or token is None:
                session.await_auth(runtime.settings.auth_timeout)
            else:
                session.start_authenticated(principal, token)
            try:
                code = await _run(receive, session)
            finally:
                session.stop()
                session.cancel_calls()
                runtime.hub.remove(conn)
                if conn.close_code is not None:
                    code = conn.close_code
        finally:
            if runtime.settings.access_log:
                _log_access(code, time.perf_counter() - start, request.user)


async def _run(receive: Receive, session: Session) -> int:
    """Read until the peer leaves, or until the server finished the connection (closed
    it, or gave up on a stalled peer): then the read is cancelled. No second task: an
    idle socket costs one task, uvicorn's. The peer's close code (1006: none seen)."""
    conn = session.conn
    code = ABNORMAL_CLOSURE
    me = asyncio.current_task()
    assert me is not None
    reading = [True]

    def finished(_: asyncio.Future[None]) -> None:
        if reading[0]:
            me.cancel()

    conn.done.add_done_callback(finished)
    try:
        code = await _read_loop(receive, session)
    except asyncio.CancelledError:
        if not conn.done.done():
            raise  # cancelled from outside (the server is stopping)
        me.uncancel()  # our own doing: the connection is finished
    finally:
        reading[0] = False
        if not conn.closing:
            conn.abandon()  # the peer left first
    await conn.done
    return code


async def _read_loop(receive: Receive, session: Session) -> int:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            code = message.get("code", ABNORMAL_CLOSURE)
            return code if isinstance(code, int) else ABNORMAL_CLOSURE
        text = message.get("text")
        if text is not None:
            await session.on_text(text)
        else:
            session.on_bytes()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def peer_of(scope: Scope, trusted: TrustedPeers) -> Peer:
    """The client as the handshake tells it: forwarded headers count from trusted peers
    only (the gateway); the client's address is the right-most forwarded one."""
    headers = {k: v.decode("latin-1") for k, v in scope.get("headers", ()) if k in _PEER_HEADERS}
    client = scope.get("client")
    address = client[0] if client else None
    traceparent = None
    if trusted.trusts(scope):
        forwarded = [a.strip() for a in headers.get(b"x-forwarded-for", "").split(",")]
        address = next((a for a in reversed(forwarded) if a), address)
        trace = headers.get(b"traceparent", "")
        traceparent = trace if _TRACEPARENT.match(trace) else None
    agent = headers.get(b"user-agent")
    return Peer(traceparent, address, agent[:512] if agent else None)


def _handshake_span(scope: Scope, runtime: Runtime) -> contextlib.AbstractContextManager[Any]:
    """With tracing on, the handshake (not the socket's life: it may last hours) as a
    SERVER span, joining the gateway's trace (a ``traceparent`` from a trusted peer)."""
    if not tracing.state.on:
        return contextlib.nullcontext()
    parent = peer_of(scope, runtime.trusted).traceparent
    attributes = {"url.path": str(scope.get("path", ""))}
    return tracing.span(
        "realtime", "WS /ws", kind=SpanKind.SERVER, parent=parent, attributes=attributes
    )


async def _refuse(socket: AsgiSocket, code: int, reason: str, span: Any = None) -> None:
    """Accept, then close with ``code``: 1008 for a bad token, 1013 when the issuer's keys
    are unavailable, 1012 while shutting down.

    A close code reaches every client (browsers cannot read a refused handshake's status),
    and uvicorn's sans-I/O protocol logs an error for every denial response.
    """
    if span is not None:
        span.set_attribute("gatehouse.websocket.close_code", code)
        span.set_status(Status(StatusCode.ERROR, reason))
    await socket.accept()
    await socket.close(code, reason.encode()[:120].decode(errors="ignore"))


def _log_access(code: int, duration: float, user: str | None) -> None:
    """The socket's access line, as ServiceMiddleware writes a request's."""
    if not access.isEnabledFor(logging.INFO):
        return
    ms = round(duration * 1000, 2)
    access.info(
        "GET /ws %d %.2fms user=%s",
        code,
        ms,
        user or "-",
        extra={
            "fields": {
                "method": "GET",
                "route": WS_ROUTE,
                "status": code,
                "duration_ms": ms,
                "user": user,
            }
        },
    )
