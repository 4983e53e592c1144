"""HTTP errors of the edge that ``gatehouse.common.errors`` has no class for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gatehouse.common.errors import GatehouseError


class MethodNotAllowed(GatehouseError):
    status, code, title = 405, "method_not_allowed", "Method Not Allowed"

    def __init__(self, allowed: Iterable[str], **extra: Any) -> None:
        methods = ", ".join(allowed)
        super().__init__(f"allowed methods: {methods}", **extra)
        self.headers["Allow"] = methods


class UpgradeRequired(GatehouseError):
    status, code, title = 426, "upgrade_required", "Upgrade Required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Upgrade"] = "websocket"
        self.headers["Connection"] = "Upgrade"


class RequestTimeout(GatehouseError):
    status, code, title = 408, "request_timeout", "Request Timeout"


class UriTooLong(GatehouseError):
    status, code, title = 414, "uri_too_long", "URI Too Long"


class UnsupportedMediaType(GatehouseError):
    status, code, title = 415, "unsupported_media_type", "Unsupported Media Type"


class HeadersTooLarge(GatehouseError):
    status, code, title = 431, "headers_too_large", "Request Header Fields Too Large"
