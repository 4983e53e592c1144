"""The one error hierarchy of Gatehouse.

Every error a service raises on purpose derives from :class:`GatehouseError`.
Its ``status`` and ``code`` are what :mod:`gatehouse.common.problem` turns into an
RFC 9457 ``application/problem+json`` response over HTTP, or an error envelope
``{"code": ..., "message": ...}`` over WebSocket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar


class GatehouseError(Exception):
    """Base of every deliberate error; carries an HTTP status and a stable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}


class BadRequest(GatehouseError):
    """The request is malformed (400)."""

    status, code, title = 400, "bad_request", "Bad Request"


class Unauthorized(GatehouseError):
    """No credentials, or credentials that do not verify (RFC 9110 §15.5.2)."""

    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = 'Bearer realm="gatehouse"'


class Forbidden(GatehouseError):
    """Valid credentials that lack the role the resource needs (RFC 9110 §15.5.4)."""

    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(GatehouseError):
    """No such resource (404)."""

    status, code, title = 404, "not_found", "Not Found"


class Conflict(GatehouseError):
    """The request conflicts with the resource's state, e.g. a duplicate name (409)."""

    status, code, title = 409, "conflict", "Conflict"


class MethodNotAllowed(GatehouseError):
    """The resource does not answer this method (405); ``Allow`` lists those it does."""

    status, code, title = 405, "method_not_allowed", "Method Not Allowed"

    def __init__(self, allowed: Iterable[str], **extra: Any) -> None:
        methods = ", ".join(allowed)
        super().__init__(f"allowed methods: {methods}", **extra)
        self.headers["Allow"] = methods


class RequestTimeout(GatehouseError):
    """The client did not send its request in time (408)."""

    status, code, title = 408, "request_timeout", "Request Timeout"


class PayloadTooLarge(GatehouseError):
    """The body or message is larger than the limit (413)."""

    status, code, title = 413, "payload_too_large", "Content Too Large"


class UriTooLong(GatehouseError):
    """The request target is longer than the limit (414)."""

    status, code, title = 414, "uri_too_long", "URI Too Long"


class UnsupportedMediaType(GatehouseError):
    """A body of a type or encoding the resource does not take (415)."""

    status, code, title = 415, "unsupported_media_type", "Unsupported Media Type"


class ValidationFailed(GatehouseError):
    """Well-formed but invalid content (422)."""

    status, code, title = 422, "validation_failed", "Unprocessable Content"


class UpgradeRequired(GatehouseError):
    """A WebSocket endpoint asked for without the upgrade (426)."""

    status, code, title = 426, "upgrade_required", "Upgrade Required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Upgrade"] = "websocket"
        self.headers["Connection"] = "Upgrade"


class PreconditionRequired(GatehouseError):
    """A write that must be conditional (``If-Match``) and is not (428)."""

    status, code, title = 428, "precondition_required", "Precondition Required"


class TooManyRequests(GatehouseError):
    """Rate limited (429); ``retry_after`` seconds go into ``Retry-After``."""

    status, code, title = 429, "rate_limited", "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after)


class HeadersTooLarge(GatehouseError):
    """The request's header fields are larger than the limit (431)."""

    status, code, title = 431, "headers_too_large", "Request Header Fields Too Large"


class UpstreamError(GatehouseError):
    """An upstream answered badly or not at all."""

    status, code, title = 502, "bad_gateway", "Bad Gateway"


class ServiceUnavailable(GatehouseError):
    """A dependency is down; try again (503, ``Retry-After`` when known)."""

    status, code, title = 503, "unavailable", "Service Unavailable"

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(detail, **extra)
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


class UpstreamTimeout(GatehouseError):
    """An upstream did not answer in time (504)."""

    status, code, title = 504, "upstream_timeout", "Gateway Timeout"


class RpcUnavailable(GatehouseError):
    """Nobody serves the RPC routing key (the callee is not running)."""

    status, code, title = 503, "rpc_unavailable", "Service Unavailable"


class RpcTimeout(GatehouseError):
    """The callee did not answer an RPC request in time."""

    status, code, title = 504, "rpc_timeout", "Gateway Timeout"


class ConfigurationError(GatehouseError):
    """A setting is present but wrong; raised at start-up and names the setting."""

    code, title = "configuration_error", "Configuration Error"

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


class UnsafeForProduction(GatehouseError):
    """The production profile was asked for with defaults that are safe on one machine only."""

    code, title = "unsafe_for_production", "Unsafe For Production"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
