"""Prometheus families of the gateway (labels are route templates and upstream names)."""

from __future__ import annotations

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
