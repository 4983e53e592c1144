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
