"""The one decorator of every response the gateway sends, proxied or its own.

Adds the request id, the security headers, the ``RateLimit`` fields and CORS
headers the policy decided, records the RED metrics, and turns an error into a
problem+json response (an unexpected exception into a problem ``500``, never
uvicorn's plain text). A WebSocket refusal becomes the same problem as an HTTP
response when the server supports the ``websocket.http.response`` extension.
"""

from __future__ import annotations

import logging
import time

from gatehouse.common.errors import GatehouseError
from gatehouse.common.metrics import HTTP_DURATION, HTTP_REQUESTS
from gatehouse.common.problem import encode_problem
from gatehouse.common.types import Message, Send
from gatehouse.gateway.edge.exchange import Exchange, Headers

log = logging.getLogger("gatehouse.gateway")

SECURITY_HEADERS: Headers = [
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
_OWNED = frozenset(name for name, _ in SECURITY_HEADERS) | {
    b"x-request-id",
    b"ratelimit",
    b"ratelimit-policy",
}
_STARTS = frozenset(
    {"http.response.start", "websocket.accept", "websocket.close", "websocket.http.response.start"}
)
_metric_children: dict[tuple[str, str, str], tuple[object, object]] = {}


class Responder:
    """Wraps ``send`` for one exchange; the only place response headers are decorated."""

    __slots__ = ("ex", "send_raw", "started")

    def __init__(self, ex: Exchange, send: Send) -> None:
        self.ex = ex
        self.send_raw = send
        self.started = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            self.ex.status = message["status"]
            message["headers"] = self.decorate(message.get("headers", ()))
        elif kind in _STARTS:
            self.started = True
            if kind == "websocket.http.response.start":
                self.ex.status = message["status"]
                message["headers"] = self.decorate(message.get("headers", ()))
        await self.send_raw(message)

    def decorate(self, headers: Headers | tuple[tuple[bytes, bytes], ...]) -> Headers:
        ex = self.ex
        out = [h for h in headers if h[0] not in _OWNED]
        if ex.csp is None:
            out += SECURITY_HEADERS
        else:  # a page of the gateway's own that loads scripts (/docs)
            out += [
                (n, ex.csp if n == b"content-security-policy" else v) for n, v in SECURITY_HEADERS
            ]
        out.append((b"x-request-id", ex.request_id.encode()))
        if ex.rate_headers:
            out += ex.rate_headers
        if ex.cors_headers:
            out += ex.cors_headers
        return out

    async def problem(self, error: GatehouseError) -> None:
        """Answer ``error`` unless a response has started (then the connection just ends)."""
        if error.status >= 500:
            log.warning("%s %s: %s", error.status, self.ex.path, error.detail)
        if self.started:
            raise error
        headers, body = encode_problem(error, self.ex.path)
        if self.ex.scope["type"] == "websocket":
            await self._reject_websocket(error, headers, body)
            return
        await self.send({"type": "http.response.start", "status": error.status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def _reject_websocket(self, error: GatehouseError, headers: Headers, body: bytes) -> None:
        if "websocket.http.response" not in self.ex.scope.get("extensions", {}):
            code = 1008 if error.status in (401, 403) else 1013 if error.status == 429 else 1011
            await self.send({"type": "websocket.close", "code": code, "reason": error.code})
            return
        start = {
            "type": "websocket.http.response.start",
            "status": error.status,
            "headers": headers,
        }
        await self.send(start)
        await self.send({"type": "websocket.http.response.body", "body": body})

    def record(self) -> None:
        """RED metrics per route template (never the raw path), method and status."""
        ex = self.ex
        route = ex.route.prefix if ex.route is not None else ex.template
        key = (route, ex.method, str(ex.status or 500))
        children = _metric_children.get(key)
        if children is None:
            children = (
                HTTP_REQUESTS.labels("gateway", route, ex.method, key[2]),
                HTTP_DURATION.labels("gateway", route, ex.method),
            )
            if len(_metric_children) < 10_000:
                _metric_children[key] = children
        counter, histogram = children
        counter.inc()  # type: ignore[attr-defined]
        histogram.observe(time.perf_counter() - ex.started)  # type: ignore[attr-defined]
