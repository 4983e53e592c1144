"""Prometheus families of the realtime service (process-wide, like the common ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

SUBSCRIPTIONS = Gauge(
    "gatehouse_realtime_subscriptions", "Channel subscriptions of the open connections."
)
DUPLICATES = Counter(
    "gatehouse_realtime_duplicates_dropped_total",
    "Events from the bus not pushed because they were seen already: by event id, or at "
    "or below their channel's last sequence (counted per channel).",
    ["reason"],
)
DUPLICATES_ID = DUPLICATES.labels("id")
DUPLICATES_SEQUENCE = DUPLICATES.labels("sequence")
EVENT_LAG = Histogram(
    "gatehouse_realtime_event_lag_seconds",
    "From an event's time (its creation) to its hand-off to the subscribers, per event "
    "read from the bus: outbox, relay, broker and intake together. High while a "
    "replica refills its history after start-up.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
INTAKE_CAUGHT_UP = Gauge(
    "gatehouse_realtime_intake_caught_up",
    "1 once the intake has refilled the history from the stream since start-up.",
)
RECOVERIES = Counter(
    "gatehouse_realtime_recoveries_total",
    "Subscriptions with `since`, by outcome (recovered or the reason it was not).",
    ["outcome"],
)
for _outcome in ("recovered", "history_expired", "history_unavailable", "position_unknown"):
    RECOVERIES.labels(_outcome)
HISTORY_EVENTS = Gauge(
    "gatehouse_realtime_history_events", "Events held in the channel histories (per channel)."
)
CALLS = Counter(
    "gatehouse_realtime_calls_total",
    "WebSocket `call` requests that reached a method, by method and outcome (ok or the "
    "error code: rpc_timeout, rpc_unavailable, forbidden, ...).",
    ["method", "outcome"],
)
