"""The outbox relay: publishes unsent outbox rows in order and stamps their ``sequence``.

On PostgreSQL only the relay that holds a session-level advisory lock works; the
others stand by and retry, so ``sequence`` is stamped by one writer in
publication order. The lock and all the relay's queries share one dedicated
connection: if that connection dies, the lock goes with it and so does the work.
An outbox insert wakes the relay through LISTEN/NOTIFY (PostgreSQL) or
:meth:`OutboxRelay.wake` (same process); polling is the fallback.
A batch is handed to the bus in order and its confirms are awaited together. A failed
publish leaves its row unsent: the relay backs off and retries in order, with the same
sequence, unless later events of its batch were taken (a broker's refusal of that one
message): then it goes again with a new sequence after theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.authors.adapters import outbox
from gatehouse.authors.adapters.database import check_reachable, create_engine, is_postgres
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common import tracing
from gatehouse.common.bus import bus_from_url
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import EXCHANGE, CloudEvent, EventBus
from gatehouse.common.metrics import EVENTS_PUBLISHED

log = logging.getLogger("gatehouse.authors.relay")

PUBLISH_FAILURES = Counter(
    "gatehouse_outbox_publish_failures_total",
    "Outbox events whose publication failed (they stay unsent and are retried).",
    ["service"],
)
RELAY_ACTIVE = Gauge(
    "gatehouse_outbox_relay_active", "1 while this process's relay is the active one.", ["service"]
)
OUTBOX_PENDING = Gauge(
    "gatehouse_outbox_pending", "Unsent outbox rows, as the active relay last saw.", ["service"]
)
OUTBOX_LAG = Gauge(
    "gatehouse_outbox_lag_seconds",
    "Age of the oldest unsent outbox row (0 when all are sent), as the active relay last saw.",
    ["service"],
)
for _gauge in (RELAY_ACTIVE, OUTBOX_PENDING, OUTBOX_LAG):
    _gauge.labels("authors").set(0)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        *,
        service: str = "authors",
        batch_size: int = 100,
        poll_interval: float = 0.1,
        listen_poll_interval: float = 2.0,
        standby_interval: float = 1.0,
        retry_interval: float = 0.2,
        max_retry_interval: float = 5.0,
    ) -> None:
        self._engine = engine
        self._bus = bus
        self._service = service
        self._batch_size = batch_size
        self._poll = poll_interval
        self._listen_poll = listen_poll_interval
        self._standby = standby_interval
        self._retry = self._min_retry = retry_interval
        self._max_retry = max_retry_interval
        self._wake = asyncio.Event()
        self._sequence = 0
        self._listening = False
        self._measured_at = 0.0
        self.active = False
        self.pending = 0
        self.lag = 0.0

    def describe(self) -> str:
        """Where the relay stands, for readiness details."""
        if not self.active:
            return "standing by (another relay holds the lock)"
        return (
            f"active at sequence {self._sequence}, {self.pending} unsent, oldest {self.lag:.1f} s"
        )

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; errors are logged and retried, never raised."""
        while not stop.is_set():
            try:
                await self._connect_and_serve(stop)
            except Exception:
                log.exception("outbox relay lost its connection; retrying")
                await _pause(stop, self._backoff())

    async def _connect_and_serve(self, stop: asyncio.Event) -> None:
        async with self._engine.connect() as conn:
            if is_postgres(self._engine):
                # Each of the relay's statements stands alone (a SELECT, one UPDATE
                # for the batch): in autocommit they need no BEGIN and COMMIT round trips,
                # four of the six a small batch cost. The connection is discarded after.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await self._lead(conn):
                await _pause(stop, self._standby)
                return
            try:
                await self._serve(conn, stop)
            finally:
                self._set_active(False)
                if is_postgres(self._engine):
                    # Never hand a connection holding the lock or a LISTEN back to the pool.
                    await conn.invalidate()

    async def _lead(self, conn: AsyncConnection) -> bool:
        if not is_postgres(self._engine):
            return True  # SQLite is the embedded, single-process mode
        return await outbox.try_advisory_lock(conn)

    async def _serve(self, conn: AsyncConnection, stop: asyncio.Event) -> None:
        self._listening = await self._listen(conn)
        self._sequence = await outbox.last_sequence(conn)
        self._set_active(True)
        log.info("outbox relay active from sequence %d", self._sequence)
        while not stop.is_set():
            sent, failed = await self._relay_batch(conn)
            await self._measure(conn)
            if failed:
                await _pause(stop, self._backoff())
            elif sent < self._batch_size:
                await self._idle(stop)

    async def _measure(self, conn: AsyncConnection) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._measured_at < 1.0:
            return
        self._measured_at = now
        self.pending, oldest = await outbox.backlog(conn)
        self.lag = max((datetime.now(UTC) - oldest).total_seconds(), 0.0) if oldest else 0.0
        OUTBOX_PENDING.labels(self._service).set(self.pending)
        OUTBOX_LAG.labels(self._service).set(self.lag)

    async def _listen(self, conn: AsyncConnection) -> bool:
        if not is_postgres(self._engine):
            return False
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # the asyncpg connection
        assert driver is not None
        await driver.add_listener(outbox.NOTIFY_CHANNEL, self._on_notify)
        return True

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _relay_batch(self, conn: AsyncConnection) -> tuple[int, bool]:
        self._wake.clear()  # before reading, so an insert during the batch is not missed
        pending = await outbox.fetch_unsent(conn, self._batch_size)
        # The batch is handed to the bus in order (the channel's lock is FIFO) and its
        # confirms are awaited together: one at a time, each publish waited a broker
        # round trip behind the requests of this process, and the relay fell seconds
        # behind 200 writes/s.
        outcomes = await asyncio.gather(
            *(self._publish(item, self._sequence + n) for n, item in enumerate(pending, 1))
        )
        stamped = [
            (item.row_id, self._sequence + n)
            for n, (item, published) in enumerate(zip(pending, outcomes, strict=True), 1)
            if published
        ]
        first_failure = outcomes.index(False) if False in outcomes else len(outcomes)
        if any(outcomes[first_failure:]):
            # The broker refused some and took later ones: those are delivered with their
            # sequences, so the refused rows (never delivered) get new ones, after them.
            self._sequence += len(pending)
        else:
            # All sent, or everything from the first failure on failed (the connection
            # went): the prefix is stamped and the rest goes again, in order, with the
            # same sequences (what arrived without its confirm is dropped as seen).
            self._sequence += len(stamped)
        failed = len(stamped) < len(pending)
        await outbox.mark_sent(conn, stamped)
        if stamped:
            self._retry = self._min_retry
        return len(stamped), failed

    async def _publish(self, item: outbox.PendingEvent, sequence: int) -> bool:
        stamped = item.event.model_copy(update={"sequence": sequence})
        # A child of the request that wrote the row; consumers continue from this span.
        with tracing.publish_span(self._service, stamped, EXCHANGE) as event:
            return await self._publish_traced(event)

    async def _publish_traced(self, event: CloudEvent) -> bool:
        try:
            await self._bus.publish(event)
        except Exception as exc:
            PUBLISH_FAILURES.labels(self._service).inc()
            log.warning("publishing %s %s failed, will retry: %r", event.type, event.id, exc)
            return False
        EVENTS_PUBLISHED.labels(self._service, event.type).inc()
        return True

    async def _idle(self, stop: asyncio.Event) -> None:
        timeout = self._listen_poll if self._listening else self._poll
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def _backoff(self) -> float:
        delay, self._retry = self._retry, min(self._retry * 2, self._max_retry)
        return delay

    def _set_active(self, active: bool) -> None:
        self.active = active
        RELAY_ACTIVE.labels(self._service).set(1 if active else 0)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def run_relay(settings: AuthorsSettings, stop: asyncio.Event) -> None:
    """The standalone relay process (``gatehouse run relay``): runs until ``stop`` is set.

    It needs a broker: without ``AMQP_URL`` its events would go to an in-process bus
    that nobody reads, so it refuses to start.
    """
    if not settings.amqp_url:
        raise ConfigurationError("AMQP_URL", "the standalone relay needs a broker to publish to")
    engine = create_engine(settings.sqlalchemy_url(), settings.pool())
    try:
        await check_reachable(engine)
        bus = bus_from_url(settings.amqp_url, exchange=settings.amqp_exchange)
        await bus.start()
        try:
            await OutboxRelay(engine, bus).run(stop)
        finally:
            await bus.close()
    finally:
        await engine.dispose()
