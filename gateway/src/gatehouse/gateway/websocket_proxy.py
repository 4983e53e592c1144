"""The WebSocket proxy: open the upstream socket, accept the client, pipe frames both ways.

Text stays text and binary stays binary; a close from either side closes the
other with the same code and reason; a frame over the limit closes both (1009).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gatehouse.common.errors import (
    Forbidden,
    GatehouseError,
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.asgi import route_of
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.forwarding import target_path, upstream_headers
from gatehouse.gateway.metrics import WS_CONNECTIONS
from gatehouse.gateway.upstreams import UpstreamClient

log = logging.getLogger("gatehouse.gateway.websocket")
_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"origin",
    }
)
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011}  # reserved codes never go on the wire
_REFUSALS: dict[int, type[GatehouseError]] = {401: Unauthorized, 403: Forbidden, 404: NotFound}


class WebSocketProxy:
    def __init__(
        self, upstreams: dict[str, UpstreamClient], addresses: ClientAddress, max_frame_bytes: int
    ) -> None:
        self.upstreams = upstreams
        self.addresses = addresses
        self.max_frame_bytes = max_frame_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        upstream = self.upstreams[route_of(scope).upstream]
        ws = await upstream.breaker.call(
            lambda: self._connect(upstream, scope),
            counts=lambda exc: isinstance(exc, UpstreamError | UpstreamTimeout),
        )
        await send({"type": "websocket.accept", "subprotocol": ws.subprotocol})
        WS_CONNECTIONS.inc()
        try:
            await _Pipe(receive, send, ws, self.max_frame_bytes).run()
        finally:
            WS_CONNECTIONS.dec()

    async def _connect(self, upstream: UpstreamClient, scope: Scope) -> ClientConnection:
        url = upstream.base_url.copy_with(
            scheme="wss" if upstream.base_url.scheme == "https" else "ws",
            raw_path=target_path(route_of(scope), scope),
        )
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in upstream_headers(scope, self.addresses, skip=_HANDSHAKE)
        ]
        try:
            return await connect(
                str(url),
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                compression=None,
                max_size=self.max_frame_bytes,
                open_timeout=upstream.config.timeouts.connect,
                user_agent_header=None,
                proxy=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise _REFUSALS.get(status, UpstreamError)(f"upstream answered {status}") from None
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamTimeout(f"upstream {upstream.name} did not answer in time") from None
        except (OSError, InvalidHandshake) as exc:
            raise UpstreamError(f"upstream {upstream.name} unreachable: {exc}") from None


class _Pipe:
    """Both directions of one proxied connection."""

    def __init__(self, receive: Receive, send: Send, ws: ClientConnection, max_bytes: int) -> None:
        self.receive = receive
        self.send = send
        self.ws = ws
        self.max_bytes = max_bytes
        self.client_closed = False

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._client_to_upstream()),
            asyncio.create_task(self._upstream_to_client()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.ws.close()

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
                await self._close_client(1009, "frame too large")
                await self.ws.close(1001, "client sent a frame too large")
                return
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                return  # the other direction reports the upstream's close

    async def _upstream_to_client(self) -> None:
        try:
            while True:
                data = await self.ws.recv()
                key = "text" if isinstance(data, str) else "bytes"
                await self.send({"type": "websocket.send", key: data})
        except ConnectionClosed as closed:
            await self._close_client(*_close_of(closed))

    async def _close_client(self, code: int, reason: str) -> None:
        if self.client_closed:
            return
        self.client_closed = True
        with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
            await self.send({"type": "websocket.close", "code": code, "reason": reason})


def _close_of(closed: ConnectionClosed) -> tuple[int, str]:
    frame: Any = closed.rcvd if closed.rcvd is not None else closed.sent
    if frame is None:
        return 1011, "upstream connection lost"
    return _sendable(frame.code), frame.reason


def _sendable(code: int) -> int:
    return _UNSENDABLE.get(code, code)
