"""Prometheus metrics shared by every service, and pure ASGI RED middleware.

Route labels are route *templates* (``/v1/authors/{author_id}``), never raw paths,
so that a scan of random URLs cannot blow up the series count.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "gatehouse_http_requests_total",
    "HTTP requests handled, by service, route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "gatehouse_http_request_duration_seconds",
    "HTTP request duration, by service and route template.",
    ["service", "route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_PUBLISHED = Counter(
    "gatehouse_events_published_total", "Events published to the bus.", ["service", "type"]
)
EVENTS_CONSUMED = Counter(
    "gatehouse_events_consumed_total", "Events consumed from the bus.", ["service", "type"]
)


def metrics_response() -> Response:
    """The Prometheus exposition as a Starlette response (for FastAPI apps)."""
    from starlette.responses import Response

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class REDMiddleware:
    """Count requests and time them per route template (pure ASGI)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            observe_request(self.service, scope, status, time.perf_counter() - start)


def observe_request(service: str, scope: Scope, status: int, duration: float) -> None:
    """Count one HTTP request of ``service`` and its duration, by route template."""
    route = route_template(scope)
    method = scope.get("method", "GET")
    HTTP_REQUESTS.labels(service, route, method, str(status)).inc()
    HTTP_DURATION.labels(service, route, method).observe(duration)


def route_template(scope: Scope) -> str:
    """The template of the route that matched (``/v1/authors/{author_id}``), never the path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "<unmatched>"
