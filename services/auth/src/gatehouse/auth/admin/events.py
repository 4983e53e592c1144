"""The ``gatehouse.user.*`` events of the admin API and the relay that publishes them.

Each change writes its audit row, which holds the event, in the transaction of the
change (``service.py``): an event exists exactly when its change committed. The relay
publishes the unpublished rows in id order and stamps each with ``published_at`` and
``sequence``. It holds the row of ``auth_event_sequence`` locked while it publishes a
batch, so the relays of several replicas take turns and ``sequence`` is monotonic in
publication order (the design's rule; no advisory lock needed for a table this quiet).
It selects unpublished rows, never "id > last seen" (ids are allocated before commit).
Delivery is at least once (a crash between the broker's confirm and the commit sends a
row again): consumers dedupe by ``id``, as with every Gatehouse event. Without a bus
(``AMQP_URL`` unset outside ``gatehouse run all``) the rows wait in the table and go
out once a replica with a bus runs; the service logs that at start.

The authors service has a relay of its own (advisory lock, LISTEN/NOTIFY); one shared
relay in ``gatehouse.common`` would serve both (not done yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.tables import audit, event_sequence
from gatehouse.common import tracing
from gatehouse.common.events import CloudEvent, EventBus

log = logging.getLogger("gatehouse.auth.relay")

SOURCE = "/gatehouse/auth"
USER_CREATED = "gatehouse.user.created"
USER_UPDATED = "gatehouse.user.updated"
USER_ROLE_GRANTED = "gatehouse.user.role_granted"
USER_ROLE_REVOKED = "gatehouse.user.role_revoked"
EVENT_TYPES = (USER_CREATED, USER_UPDATED, USER_ROLE_GRANTED, USER_ROLE_REVOKED)
BATCH = 100
_UNPUBLISHED = (
    sa.select(audit.c.id, audit.c.event)
    .where(audit.c.published_at.is_(None))
    .order_by(audit.c.id)
    .limit(BATCH)
)


def user_event(kind: str, subject: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        source=SOURCE,
        type=kind,
        subject=subject,
        data=data,
        traceparent=tracing.current_traceparent(),
    )


class AuditRelay:
    """Publishes the audit rows' events to ``bus``; ``wake()`` after a commit."""

    def __init__(self, engine: AsyncEngine, bus: EventBus, *, poll_interval: float = 1.0) -> None:
        self._engine = engine
        self._bus = bus
        self._poll = poll_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled; errors are logged and retried."""
        while True:
            try:
                while await self.publish_pending() == BATCH:
                    pass
            except Exception:
                log.exception("publishing gatehouse.user.* events failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; how many went out."""
        sent = 0
        async with self._engine.begin() as conn:
            last = await _lock_sequence(conn)
            for row_id, raw in (await conn.execute(_UNPUBLISHED)).all():
                event = CloudEvent.from_json(raw).model_copy(update={"sequence": last + 1})
                if not await self._publish(event):
                    break
                last += 1
                await conn.execute(
                    audit.update()
                    .where(audit.c.id == row_id)
                    .values(published_at=time.time(), sequence=last)
                )
                sent += 1
            await conn.execute(
                event_sequence.update().where(event_sequence.c.source == SOURCE).values(value=last)
            )
        return sent

    async def _publish(self, event: CloudEvent) -> bool:
        try:
            with tracing.publish_span("auth", event, event.type) as traced:
                await self._bus.publish(traced)
        except Exception as exc:
            log.warning("could not publish %s %s (kept for later): %r", event.type, event.id, exc)
            return False
        return True


async def _lock_sequence(conn: AsyncConnection) -> int:
    """The last stamped ``sequence``, locked until this transaction ends (PostgreSQL:
    other relays wait here; SQLite has one writer anyway)."""
    query = (
        sa.select(event_sequence.c.value).where(event_sequence.c.source == SOURCE).with_for_update()
    )
    return int((await conn.execute(query)).scalar_one())
