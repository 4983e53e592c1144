"""Prometheus families of the gateway (labels are route templates and upstream names)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_REQUESTS = Counter(
    "gatehouse_gateway_upstream_requests_total",
    "Requests proxied, by route template, upstream and status (0 when no response came).",
    ["route", "upstream", "status"],
)
UPSTREAM_LATENCY = Histogram(
    "gatehouse_gateway_upstream_latency_seconds",
    "Time until the upstream's response headers arrived.",
    ["upstream"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BREAKER_STATE = Gauge(
    "gatehouse_gateway_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
)
RATE_LIMIT_DECISIONS = Counter(
    "gatehouse_gateway_rate_limit_decisions_total",
    "Rate-limit decisions: allowed, limited, or store_error (then failed open or closed).",
    ["policy", "decision"],
)
RATE_LIMIT_STORE_ERRORS = Counter(
    "gatehouse_gateway_rate_limit_store_errors_total",
    "Rate-limit store calls that failed.",
    ["store"],
)
WS_CONNECTIONS = Gauge(
    "gatehouse_gateway_websocket_connections", "WebSocket connections being proxied."
)
WS_HANDSHAKES_WAITING = Gauge(
    "gatehouse_gateway_websocket_handshakes_waiting",
    "WebSocket handshakes waiting for their turn to open the upstream socket.",
    ["upstream"],
)
WS_HANDSHAKES_SHED = Counter(
    "gatehouse_gateway_websocket_handshakes_shed_total",
    "WebSockets closed with 1013 because their turn did not come within handshake_wait.",
    ["upstream"],
)
REVOCATIONS = Gauge(
    "gatehouse_gateway_revocations", "Revoked sessions and subjects the gateway refuses now."
)
REVOCATION_POLLS = Counter(
    "gatehouse_gateway_revocation_polls_total",
    "Polls of the auth service's revocation list, by outcome (ok or error).",
    ["outcome"],
)
CONFIG_RELOADS = Counter(
    "gatehouse_gateway_config_reloads_total",
    "Configuration reloads, by outcome (applied, rejected, unchanged).",
    ["outcome"],
)
RETRIES = Counter(
    "gatehouse_gateway_upstream_retries_total",
    "Requests sent again: to another replica (refused) or on a fresh connection (stale).",
    ["upstream", "reason"],
)

_observers: dict[tuple[str, str], Callable[[int], None]] = {}


def upstream_observer(route: str, upstream: str) -> Callable[[int], None]:
    """A function recording one upstream outcome (status, 0 when none) and its latency."""
    observer = _observers.get((route, upstream))
    if observer is not None:
        return _timed(observer)
    statuses: dict[int, Any] = {}
    latency = UPSTREAM_LATENCY.labels(upstream)

    def observe(status: int, elapsed: float) -> None:
        counter = statuses.get(status)
        if counter is None:
            counter = statuses[status] = UPSTREAM_REQUESTS.labels(route, upstream, str(status))
        counter.inc()
        if status:
            latency.observe(elapsed)

    _observers[(route, upstream)] = observe  # type: ignore[assignment]
    return _timed(observe)


def _timed(observe: Callable[..., None]) -> Callable[[int], None]:
    start = time.perf_counter()
    return lambda status: observe(status, time.perf_counter() - start)
