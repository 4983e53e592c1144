"""Turn every GatehouseError raised in the pipeline into a problem response (pure ASGI).

HTTP gets RFC 9457 ``application/problem+json``. A WebSocket handshake gets the
same problem as an HTTP response when the server supports the ASGI
``websocket.http.response`` extension (uvicorn does), else a close (1008 for
authentication and authorization failures).
"""

from __future__ import annotations

import logging

from gatehouse.common.errors import GatehouseError
from gatehouse.common.problem import encode_problem, send_problem
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gatehouse.gateway")
_STARTS = {
    "http.response.start",
    "websocket.accept",
    "websocket.close",
    "websocket.http.response.start",
}


class ProblemMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] in _STARTS
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except GatehouseError as exc:
            if exc.status >= 500:
                log.warning("%s %s: %s", exc.status, scope.get("path"), exc.detail)
            if started:
                raise
            if scope["type"] == "http":
                await send_problem(send, exc, scope.get("path"))
            else:
                await reject_websocket(scope, send, exc)


async def reject_websocket(scope: Scope, send: Send, error: GatehouseError) -> None:
    """Refuse a WebSocket handshake with the error's status (or a policy close)."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        code = 1008 if error.status in (401, 403) else 1013 if error.status == 429 else 1011
        await send({"type": "websocket.close", "code": code, "reason": error.code})
        return
    headers, body = encode_problem(error, scope.get("path"))
    await send(
        {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
    )
    await send({"type": "websocket.http.response.body", "body": body})
