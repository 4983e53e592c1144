"""Refuse request bodies over the limit, declared or streamed (pure ASGI).

``Content-Length`` over the limit is refused before reading; a chunked body (or
one that lies about its length) is counted as it streams and refused with 413
as soon as it crosses the limit, so ``Transfer-Encoding: chunked`` cannot bypass it.
"""

from __future__ import annotations

from gatehouse.common.errors import BadRequest, PayloadTooLarge
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send
from gatehouse.gateway.asgi import header


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            raise PayloadTooLarge(f"request body over {self.max_bytes} bytes")
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"request body over {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise BadRequest("invalid Content-Length")
    return int(value)
