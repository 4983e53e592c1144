"""``GET /ws``: the WebSocket endpoint, glue between Starlette and the protocol.

Authentication is the forwarded ``Authorization: Bearer`` header at the handshake
(a bad one: accept, then close 1008), or, without a header, a first
``auth`` message within ``auth_timeout`` (browsers cannot set headers; tokens never
travel in URLs). The reader runs in its own task so that a connection closed by
the server (slow consumer, expiry, shutdown) ends even when the peer is stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from gatehouse.common.errors import GatehouseError, ServiceUnavailable
from gatehouse.common.identity import Principal
from gatehouse.common.requests import TrustedPeers
from gatehouse.common.tokens import JWTVerifier, bearer_token
from gatehouse.common.types import Scope
from gatehouse.realtime.calls import Calls, Peer
from gatehouse.realtime.history import History
from gatehouse.realtime.hub import (
    POLICY_VIOLATION,
    SERVICE_RESTART,
    TRY_AGAIN_LATER,
    Connection,
    Hub,
)
from gatehouse.realtime.intake import Intake
from gatehouse.realtime.protocol import Session
from gatehouse.realtime.registry import Registry
from gatehouse.realtime.settings import RealtimeSettings

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


async def serve_websocket(websocket: WebSocket, runtime: Runtime) -> None:
    if not runtime.accepting:  # shutting down: go to another replica
        await websocket.close(SERVICE_RESTART)
        return
    principal = None
    token = bearer_token(websocket.headers.get("authorization"))
    if token is not None:
        try:
            principal = await runtime.verify(token)
        except GatehouseError as exc:  # 401 bad token, 503 issuer keys unavailable
            await _refuse(websocket, exc)
            return
    await websocket.accept()
    conn = Connection(
        websocket,
        queue_size=runtime.settings.send_queue_size,
        close_timeout=runtime.settings.close_timeout,
    )
    runtime.hub.add(conn)
    peer = peer_of(websocket.scope, runtime.trusted)
    session = Session(conn, runtime.intake, runtime.verify, runtime.settings, runtime.calls, peer)
    if principal is None or token is None:
        session.await_auth(runtime.settings.auth_timeout)
    else:
        session.start_authenticated(principal, token)
    try:
        await _run(websocket, session)
    finally:
        session.stop()
        session.cancel_calls()
        runtime.hub.remove(conn)


async def _run(websocket: WebSocket, session: Session) -> None:
    reader = asyncio.create_task(_read_loop(websocket, session))
    try:
        await asyncio.wait({reader, session.conn.done}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if not session.conn.closing:
            session.conn.abandon()  # the peer left first
        await session.conn.done


async def _read_loop(websocket: WebSocket, session: Session) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await session.on_text(text)
            else:
                session.on_bytes()


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


async def _refuse(websocket: WebSocket, error: GatehouseError) -> None:
    """Accept, then close: 1008 for a bad token, 1013 when the issuer's keys are unavailable.

    A close code reaches every client (browsers cannot read a refused handshake's status),
    and uvicorn's sans-I/O protocol logs an error for every denial response.
    """
    await websocket.accept()
    code = TRY_AGAIN_LATER if error.status >= 500 else POLICY_VIOLATION
    await websocket.close(code, error.detail.encode()[:120].decode(errors="ignore"))
