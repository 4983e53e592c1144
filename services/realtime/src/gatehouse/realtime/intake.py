"""Event intake: every event of the bus, once, to the channels it belongs to, in order.

The bus delivers at least once (the relay publishes before it marks rows sent; a
reconnect may re-read the stream), so the intake drops an event whose id it has
seen lately, and the history drops one at or below its channel's last sequence.
On start the intake reads the retained stream back ``replay`` seconds to refill
the history, and is *caught up* once it has read everything that was there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from gatehouse.common import tracing
from gatehouse.common.events import CloudEvent, EventBus, Subscription
from gatehouse.common.health import Check, CheckFn, subscription_check
from gatehouse.common.metrics import EVENTS_CONSUMED
from gatehouse.realtime import metrics
from gatehouse.realtime.channels import channels_for
from gatehouse.realtime.history import History
from gatehouse.realtime.hub import Hub, event_frame

log = logging.getLogger("gatehouse.realtime.intake")

PATTERN = "gatehouse.#"


class Intake:
    """Turns the bus's events into channel pushes; knows how far it has read."""

    def __init__(self, hub: Hub, history: History, *, remember_ids: int) -> None:
        self.hub, self.history = hub, history
        self.caught_up = asyncio.Event()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember_ids
        self._progress: asyncio.Future[None] | None = None

    async def subscribe(self, bus: EventBus, *, replay: float) -> Subscription:
        """Fan-out subscription (no queue name): this replica sees every event."""

        async def on_event(event: CloudEvent) -> None:
            self.receive(event)

        return await bus.subscribe(PATTERN, on_event, replay=replay)

    async def follow(self, subscription: Subscription) -> None:
        """Wait until the history is refilled from the stream, then say so (a task)."""
        started = time.monotonic()
        await subscription.caught_up()
        self.caught_up.set()
        metrics.INTAKE_CAUGHT_UP.set(1)
        log.info(
            "event intake caught up in %.1f s: %d events held in %d channels",
            time.monotonic() - started,
            self.history.held,
            self.history.channels,
        )

    def receive(self, event: CloudEvent) -> None:
        """Handle one event from the bus (synchronous: events are handled in order)."""
        with tracing.consume_span("realtime", event, PATTERN):
            self._receive(event)

    def _receive(self, event: CloudEvent) -> None:
        EVENTS_CONSUMED.labels("realtime", event.type).inc()
        if event.id in self._seen:
            metrics.DUPLICATES_ID.inc()
            return
        self._seen[event.id] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        channels = channels_for(event)
        if channels:
            self._push(event, channels)
        self._advance()

    def _push(self, event: CloudEvent, channels: list[str]) -> None:
        body = event.to_json().decode()
        metrics.EVENT_LAG.observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))
        for channel in channels:
            if event.sequence is not None and not self.history.accept(
                channel, event.source, event.sequence, body
            ):
                metrics.DUPLICATES_SEQUENCE.inc()
                continue
            with tracing.span("realtime", f"push {channel}", attributes={"channel": channel}):
                self.hub.broadcast(channel, event_frame(channel, body))

    async def reach(self, source: str, sequence: int) -> None:
        """Return once this replica has read ``sequence`` of ``source`` (wrap in a timeout)."""
        while (top := self.history.top(source)) is None or top < sequence:
            if self._progress is None or self._progress.done():
                self._progress = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._progress)

    def _advance(self) -> None:
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)


@contextlib.asynccontextmanager
async def follow_bus(intake: Intake, bus: EventBus) -> AsyncIterator[Subscription]:
    """Subscribe the intake (refilling ``history_ttl`` back), keep the history trimmed."""
    history = intake.history
    subscription = await intake.subscribe(bus, replay=history.ttl)
    tasks = [
        asyncio.create_task(intake.follow(subscription)),
        asyncio.create_task(_trim(history, every=min(5.0, history.ttl / 4))),
    ]
    try:
        yield subscription
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await subscription.cancel()


async def _trim(history: History, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        history.expire()
        metrics.HISTORY_EVENTS.set(history.held)


def intake_check(intake: Intake, subscription: Subscription) -> CheckFn:
    """``intake``: consuming the bus, and the history refilled from the stream since start
    (before that a resume could not be served)."""
    ready = subscription_check(subscription, "the event intake")

    async def check() -> Check:
        consuming = await ready()
        if not consuming.ok:
            return consuming
        if not intake.caught_up.is_set():
            return Check(False, "reading the event stream back to refill the history")
        return Check(True, f"{intake.history.held} events in {intake.history.channels} channels")

    return check
