"""The transactional outbox: written with each change, read and stamped by the relay.

All outbox SQL lives here. The relay works on one dedicated connection: on
PostgreSQL that connection holds the session-level advisory lock that makes its
relay the only active one, so every query of the relay runs under the lock.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gatehouse.authors.adapters import orm
from gatehouse.common.events import CloudEvent

# pg_advisory_lock key of the authors outbox relay ("GHAOUTBX" as a 63-bit number).
RELAY_LOCK_KEY = 0x4748414F55544258 & 0x7FFFFFFFFFFFFFFF
NOTIFY_CHANNEL = "gatehouse_authors_outbox"


class AbstractOutbox(abc.ABC):
    """Where a unit of work appends the events of its changes, in its own transaction."""

    @abc.abstractmethod
    async def add(self, event: CloudEvent) -> None: ...


class SqlAlchemyOutbox(AbstractOutbox):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: CloudEvent) -> None:
        await self.session.execute(insert(orm.outbox).values(**row_of(event)))


def row_of(event: CloudEvent) -> dict[str, Any]:
    """The outbox row of an event; ``payload`` is the CloudEvent in its JSON form."""
    return {
        "event_id": event.id,
        "type": event.type,
        "payload": event.model_dump(mode="json", exclude_none=True),
        "created_at": datetime.now(UTC),
    }


@dataclass(frozen=True, slots=True)
class PendingEvent:
    row_id: int
    event: CloudEvent


async def fetch_unsent(conn: AsyncConnection, limit: int) -> list[PendingEvent]:
    """Unsent rows in id order; a row that commits late is still picked up (no id cursor)."""
    table = orm.outbox
    stmt = (
        select(table.c.id, table.c.payload)
        .where(table.c.sent_at.is_(None))
        .order_by(table.c.id)
        .limit(limit)
    )
    async with conn.begin():
        rows = (await conn.execute(stmt)).all()
    return [PendingEvent(row.id, CloudEvent.model_validate(row.payload)) for row in rows]


async def mark_sent(conn: AsyncConnection, stamped: list[tuple[int, int]]) -> None:
    """Stamp ``(row id, sequence)`` pairs as sent now, in one transaction."""
    if not stamped:
        return
    table = orm.outbox
    stmt = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(sequence=bindparam("seq"), sent_at=bindparam("now"))
    )
    now = datetime.now(UTC)
    params = [{"row_id": row_id, "seq": seq, "now": now} for row_id, seq in stamped]
    async with conn.begin():
        await conn.execute(stmt, params)


async def last_sequence(conn: AsyncConnection) -> int:
    async with conn.begin():
        value = await conn.scalar(select(func.max(orm.outbox.c.sequence)))
    return int(value or 0)


async def count_unsent(conn: AsyncConnection) -> int:
    table = orm.outbox
    async with conn.begin():
        value = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.sent_at.is_(None))
        )
    return int(value or 0)


async def try_advisory_lock(conn: AsyncConnection) -> bool:
    """Take the relay lock for this connection's session (PostgreSQL only)."""
    async with conn.begin():
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY})
    return bool(got)
