"""Event intake: every event of the bus, pushed to the channels it belongs to."""

from __future__ import annotations

from gatehouse.common.events import CloudEvent, EventBus, Subscription
from gatehouse.common.metrics import EVENTS_CONSUMED
from gatehouse.realtime.hub import Hub

PATTERN = "gatehouse.#"


async def subscribe_hub(bus: EventBus, hub: Hub) -> Subscription:
    """Fan-out subscription (no queue name): this replica sees every event."""

    async def on_event(event: CloudEvent) -> None:
        EVENTS_CONSUMED.labels("realtime", event.type).inc()
        hub.publish_event(event)

    return await bus.subscribe(PATTERN, on_event)
