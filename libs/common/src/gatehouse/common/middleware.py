"""The one pure ASGI stage every service puts outermost: request id, errors, access log, metrics.

Per HTTP request or WebSocket connection it

* takes the caller's ``X-Request-ID`` when a trusted peer sent it (else makes one),
  makes it current for every log line (:mod:`gatehouse.common.requests`) and
  returns it in the response;
* answers an unexpected exception with a problem+json 500 that carries the request
  id and never the exception's text, logged once, with that request id; the
  exception goes no further, so the server does not print it a second time;
* treats a client that went away as what it is: one INFO line, no traceback;
* writes one access log line when the request ends (method, route template,
  status, duration, user, request id) on the logger ``gatehouse.access``, and
  counts it in the RED metrics.

Its place: outside everything of the service (FastAPI: the last ``add_middleware``).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from gatehouse.common import tracing
from gatehouse.common.errors import GatehouseError
from gatehouse.common.metrics import observe_request, route_template
from gatehouse.common.problem import send_problem
from gatehouse.common.requests import (
    DEFAULT_TRUSTED_PROXIES,
    IPNetwork,
    TrustedPeers,
    incoming_request_id,
    serving,
)
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("gatehouse.errors")
access = logging.getLogger("gatehouse.access")

CLIENT_CLOSED = 499  # nginx's status for "the client went away before the answer"
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes log at DEBUG
_STARTS = frozenset({"http.response.start", "websocket.accept", "websocket.close"})
_DENIAL = "websocket.http.response.start"


class InternalError(GatehouseError):
    """What the client of a request that failed unexpectedly is told."""

    def __init__(self, request_id: str) -> None:
        super().__init__("an unexpected error occurred", request_id=request_id)


class _Exchange:
    """What the middleware learns about one request while it runs."""

    __slots__ = ("disconnected", "started", "status")

    def __init__(self) -> None:
        self.status = 0
        self.started = False
        self.disconnected = False


class ServiceMiddleware:
    """The outermost stage of a service (see the module's notes); pure ASGI."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        trusted_proxies: tuple[str | IPNetwork, ...] = DEFAULT_TRUSTED_PROXIES,
        access_log: bool = True,
    ) -> None:
        self.app = app
        self.service = service
        self.trusted = TrustedPeers(trusted_proxies)
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        exchange = _Exchange()
        trusted = self.trusted.trusts(scope)
        with (
            serving(incoming_request_id(scope, trusted=trusted)) as request,
            _joined(scope, trusted),
        ):
            rid_header = (b"x-request-id", request.request_id.encode())

            async def watched_receive() -> Message:
                message = await receive()
                if message["type"] in ("http.disconnect", "websocket.disconnect"):
                    exchange.disconnected = True
                return message

            async def watched_send(message: Message) -> None:
                kind = message["type"]
                if not exchange.started and (kind in _STARTS or kind == _DENIAL):
                    exchange.started = True
                    exchange.status = _status_of(message)
                    if kind != "websocket.close":
                        message["headers"] = [*message.get("headers", ()), rid_header]
                try:
                    await send(message)
                except OSError:
                    exchange.disconnected = True
                    raise

            try:
                await self.app(scope, watched_receive, watched_send)
            except Exception as exc:
                await self._failed(scope, send, exchange, exc, request.request_id)
            finally:
                duration = time.perf_counter() - start
                if scope["type"] == "http":
                    observe_request(self.service, scope, exchange.status or 500, duration)
                if self.access_log:
                    _log_access(scope, exchange, duration, request.user)

    async def _failed(
        self, scope: Scope, send: Send, exchange: _Exchange, exc: Exception, rid: str
    ) -> None:
        if exchange.disconnected:
            log.info("client went away during %s (%s)", _what(scope), type(exc).__name__)
            exchange.status = exchange.status or CLIENT_CLOSED
            return
        log.error("unexpected error in %s", _what(scope), exc_info=exc)
        if exchange.started:
            return  # too late for an answer; the server closes the connection
        exchange.status = 500
        error = InternalError(rid)
        if scope["type"] == "http":
            error.headers["X-Request-ID"] = rid
            await send_problem(send, error, scope.get("path"))
        else:
            await send({"type": "websocket.close", "code": 1011, "reason": "internal_error"})


@contextlib.contextmanager
def _joined(scope: Scope, trusted: bool) -> Iterator[None]:
    """With tracing off, a trusted caller's ``traceparent`` still names the trace in the
    logs (with tracing on, the instrumentation outside this middleware has joined it)."""
    traceparent = None if tracing.state.on or not trusted else _header(scope, b"traceparent")
    if traceparent is None:
        yield
        return
    with tracing.joined(traceparent.decode("latin-1")):
        yield


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _status_of(message: Message) -> int:
    kind = message["type"]
    if kind == "websocket.accept":
        return 101
    if kind == "websocket.close":
        return 403  # a handshake refused by closing, as uvicorn answers it
    status = message.get("status", 0)
    return status if isinstance(status, int) else 0


def _what(scope: Scope) -> str:
    return f"{scope.get('method', 'WEBSOCKET')} {route_template(scope)}"


def _log_access(scope: Scope, exchange: _Exchange, duration: float, user: str | None) -> None:
    route = route_template(scope)
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if not access.isEnabledFor(level):
        return
    method = scope.get("method", "WEBSOCKET")
    status = exchange.status or (CLIENT_CLOSED if exchange.disconnected else 500)
    ms = round(duration * 1000, 2)
    access.log(
        level,
        "%s %s %d %.2fms user=%s",
        method,
        route,
        status,
        ms,
        user or "-",
        extra={
            "fields": {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": ms,
                "user": user,
            }
        },
    )
