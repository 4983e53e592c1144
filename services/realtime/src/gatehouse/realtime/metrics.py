"""Prometheus families of the realtime service (process-wide, like the common ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CONNECTIONS = Gauge(
    "gatehouse_realtime_connections", "Open WebSocket connections (authenticated or not)."
)
SLOW_CONSUMERS = Counter(
    "gatehouse_realtime_slow_consumers_dropped_total",
    "Connections closed with 1013 because their send queue was full.",
)
MESSAGES = Counter(
    "gatehouse_realtime_messages_total",
    "WebSocket messages, by direction (in, out) and kind (request, reply, event).",
    ["direction", "kind"],
)
MESSAGES_OUT_EVENT = MESSAGES.labels("out", "event")
MESSAGES_OUT_REPLY = MESSAGES.labels("out", "reply")
MESSAGES_IN = MESSAGES.labels("in", "request")
