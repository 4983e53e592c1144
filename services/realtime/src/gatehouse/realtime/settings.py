"""Settings of the realtime service, read from the environment and checked at start-up."""

from __future__ import annotations

from pydantic import Field

from gatehouse.common.settings import PORTS, BusSettings

KIB = 1024


class RealtimeSettings(BusSettings):
    """Port, event bus (``AMQP_URL``) and the per-connection limits of the WebSocket endpoint."""

    port: int = Field(PORTS["realtime"], validation_alias="GATEHOUSE_REALTIME_PORT")

    # Seconds a connection without an Authorization header has to send its auth message.
    auth_timeout: float = Field(5.0, gt=0, validation_alias="GATEHOUSE_REALTIME_AUTH_TIMEOUT")
    # A larger text frame gets an error envelope; the socket stays open. The transport's
    # hard limit (uvicorn ``ws_max_size``) is a multiple of it and closes with 1009.
    max_message_bytes: int = Field(
        64 * KIB, ge=256, validation_alias="GATEHOUSE_REALTIME_MAX_MESSAGE_BYTES"
    )
    # Messages waiting for one client; a client that falls further behind is closed (1013).
    send_queue_size: int = Field(256, ge=1, validation_alias="GATEHOUSE_REALTIME_SEND_QUEUE")
    max_subscriptions: int = Field(
        64, ge=1, validation_alias="GATEHOUSE_REALTIME_MAX_SUBSCRIPTIONS"
    )
    # Inbound messages per second a connection may send (token bucket), and its burst.
    message_rate: float = Field(20.0, gt=0, validation_alias="GATEHOUSE_REALTIME_MESSAGE_RATE")
    message_burst: int = Field(40, ge=1, validation_alias="GATEHOUSE_REALTIME_MESSAGE_BURST")
    # Rejected messages tolerated (refilling one a second) before the socket is closed (1008).
    rate_limit_strikes: int = Field(10, ge=1, validation_alias="GATEHOUSE_REALTIME_RATE_STRIKES")
    # Protocol-level pings from the server; a peer silent for ping_timeout is dropped.
    ping_interval: float = Field(20.0, gt=0, validation_alias="GATEHOUSE_REALTIME_PING_INTERVAL")
    ping_timeout: float = Field(20.0, gt=0, validation_alias="GATEHOUSE_REALTIME_PING_TIMEOUT")
    # How long a close handshake may take before the connection is abandoned.
    close_timeout: float = Field(5.0, gt=0, validation_alias="GATEHOUSE_REALTIME_CLOSE_TIMEOUT")
    # History per channel for resume: the last ``history_size`` events of each channel,
    # none older than ``history_ttl`` seconds, at most ``history_max_events`` in all
    # (counted per channel). A restarted replica refills it from the stream.
    history_size: int = Field(1000, ge=1, validation_alias="GATEHOUSE_REALTIME_HISTORY_SIZE")
    history_ttl: float = Field(300.0, gt=0, validation_alias="GATEHOUSE_REALTIME_HISTORY_TTL")
    history_max_events: int = Field(
        100_000, ge=1, validation_alias="GATEHOUSE_REALTIME_HISTORY_MAX_EVENTS"
    )
    # Event ids remembered to drop duplicates delivered by the bus.
    remember_event_ids: int = Field(
        50_000, ge=1, validation_alias="GATEHOUSE_REALTIME_REMEMBER_EVENT_IDS"
    )
    # How long a subscribe with ``since`` may wait for this replica to read that far
    # (refilling after start, or a little behind the replica the client came from).
    recovery_wait: float = Field(3.0, ge=0, validation_alias="GATEHOUSE_REALTIME_RECOVERY_WAIT")
    # ``call``: how long to wait for the service that owns the method, and how many calls
    # one connection may have waiting at a time.
    call_timeout: float = Field(
        5.0, gt=0, le=60, validation_alias="GATEHOUSE_REALTIME_CALL_TIMEOUT"
    )
    max_calls_in_flight: int = Field(8, ge=1, validation_alias="GATEHOUSE_REALTIME_MAX_CALLS")
