"""Match the route of a request and refuse paths that try to escape it (pure ASGI)."""

from __future__ import annotations

from collections.abc import Sequence

from gatehouse.common.errors import BadRequest, NotFound
from gatehouse.common.types import ASGIApp, Receive, Scope, Send
from gatehouse.gateway.config import Route
from gatehouse.gateway.errors import MethodNotAllowed, UpgradeRequired

_RAW_TRICKS = (b"%2f", b"%5c", b"%00", b"\\", b"\x00")


def path_trick(scope: Scope) -> str | None:
    """Why the path is refused (dot segments, encoded slashes, NUL), or None."""
    raw = bytes(scope.get("raw_path") or scope["path"].encode()).lower()
    if any(trick in raw for trick in _RAW_TRICKS):
        return "encoded slashes, backslashes and NUL are not allowed in paths"
    segments = scope["path"].split("/")
    if "." in segments or ".." in segments or "\x00" in scope["path"]:
        return "dot segments are not allowed in paths"
    return None


class RouteTable:
    """Longest matching prefix wins; prefixes match whole path segments only."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    def match(self, path: str) -> Route | None:
        for route in self._routes:
            if route.matches(path):
                return route
        return None


class RoutingMiddleware:
    """Put the matched route in ``scope["route"]``; 400, 404, 405 or 426 otherwise."""

    def __init__(self, app: ASGIApp, table: RouteTable) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if reason := path_trick(scope):
            raise BadRequest(reason)
        route = self.table.match(scope["path"])
        if route is None or (scope["type"] == "websocket" and not route.websocket):
            raise NotFound(f"no route for {scope['path']}")
        if scope["type"] == "http":
            _check_http(route, scope["method"])
        scope["route"] = route
        await self.app(scope, receive, send)


def _check_http(route: Route, method: str) -> None:
    if route.websocket:
        raise UpgradeRequired("this route accepts WebSocket connections only")
    if not route.allows(method):
        raise MethodNotAllowed(route.allowed_methods())
