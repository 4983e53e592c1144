"""The transactional outbox: written with each change, read and stamped by the relay.

Every row is an event *and* an audit record (who, from where, what changed), so
the audit trail of changes is exactly the set of changes that were committed.
Writes that were refused (403, 404, 409, 412, 422...) are audited too, in their
own table ``audit_refusals``: who tried what, and why it was refused; they are
never events. Nothing updates a row except the relay stamping
``sent_at``/``sequence``, and nothing deletes one: the trail is append-only.

All outbox SQL lives here. The relay works on one dedicated connection: on
PostgreSQL that connection holds the session-level advisory lock that makes its
relay the only active one, so every query of the relay runs under the lock.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gatehouse.authors.adapters import orm
from gatehouse.common.events import CloudEvent

# pg_advisory_lock key of the authors outbox relay ("GHAOUTBX" as a 63-bit number).
RELAY_LOCK_KEY = 0x4748414F55544258 & 0x7FFFFFFFFFFFFFFF
NOTIFY_CHANNEL = "gatehouse_authors_outbox"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who changed what: the audit half of an outbox row."""

    entity_type: str
    entity_id: str | None
    action: str
    actor_subject: str | None = None
    actor_username: str | None = None
    actor_roles: tuple[str, ...] = ()
    request_id: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    traceparent: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a write was refused: its status, problem code, and the fields it tried to set
    (their names only: the values of a refused request may be what made it refused)."""

    status: int
    code: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An audit entry as read back: its position, time and event (none for a refusal)."""

    id: int
    occurred_at: datetime
    event_id: str | None
    event_type: str | None
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Every field given must hold (AND); ``before`` is the keyset position (row id).
    ``refused``: the refused attempts instead of the committed changes."""

    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before: int | None = None
    refused: bool = False


class AbstractOutbox(abc.ABC):
    """Where a unit of work appends its events with their audit entries, in its transaction."""

    @abc.abstractmethod
    async def add(self, event: CloudEvent, entry: AuditEntry) -> None: ...

    @abc.abstractmethod
    async def refuse(self, entry: AuditEntry) -> None:
        """Audit a refused write (``entry.refusal`` set): never published."""

    @abc.abstractmethod
    async def audit(self, where: AuditFilter, limit: int) -> list[AuditRecord]:
        """Audit records matching ``where``, newest first."""


class SqlAlchemyOutbox(AbstractOutbox):
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, event: CloudEvent, entry: AuditEntry) -> None:
        # The row as parameters of one statement built once: `.values(**row)` built and
        # cache-keyed a new statement for every row (a tenth of a create's CPU).
        await self.session.execute(_ADD, row_of(event, entry))

    async def refuse(self, entry: AuditEntry) -> None:
        await self.session.execute(_REFUSE, refusal_row(entry))

    async def audit(self, where: AuditFilter, limit: int) -> list[AuditRecord]:
        table = orm.audit_refusals if where.refused else orm.outbox
        stmt = select(table).where(table.c.action.is_not(None), *_audit_filters(table, where))
        rows = await self.session.execute(stmt.order_by(table.c.id.desc()).limit(limit))
        return [_refusal_record(row) if where.refused else _record(row) for row in rows]


_ADD = insert(orm.outbox)
_REFUSE = insert(orm.audit_refusals)


def row_of(event: CloudEvent, entry: AuditEntry) -> dict[str, Any]:
    """The outbox row of an event; ``payload`` is the CloudEvent in its JSON form."""
    return {
        "event_id": event.id,
        "type": event.type,
        "payload": event.model_dump(mode="json", exclude_none=True),
        **_audit_columns(entry),
        "changes": entry.changes,
    }


def refusal_row(entry: AuditEntry) -> dict[str, Any]:
    assert entry.refusal is not None, "a refusal says why"
    return {
        **_audit_columns(entry),
        "status": entry.refusal.status,
        "code": entry.refusal.code[:64],
        "fields": list(entry.refusal.fields),
    }


def _audit_columns(entry: AuditEntry) -> dict[str, Any]:
    return {
        "created_at": datetime.now(UTC),
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "actor_subject": entry.actor_subject,
        "actor_username": entry.actor_username,
        "actor_roles": list(entry.actor_roles),
        "request_id": entry.request_id,
        "client_ip": entry.client_ip,
        "user_agent": entry.user_agent,
        "traceparent": entry.traceparent,
    }


def _audit_filters(table: Any, where: AuditFilter) -> list[Any]:
    found = []
    for column, value in (
        (table.c.entity_type, where.entity_type),
        (table.c.entity_id, where.entity_id),
        (table.c.actor_username, where.actor),
        (table.c.action, where.action),
    ):
        if value is not None:
            found.append(column == value)
    if where.since is not None:
        found.append(table.c.created_at >= where.since)
    if where.until is not None:
        found.append(table.c.created_at < where.until)
    if where.before is not None:
        found.append(table.c.id < where.before)
    return found


def _record(row: Any) -> AuditRecord:
    return AuditRecord(row.id, row.created_at, row.event_id, row.type, _entry(row))


def _refusal_record(row: Any) -> AuditRecord:
    refusal = Refusal(row.status, row.code, tuple(row.fields or ()))
    return AuditRecord(row.id, row.created_at, None, None, _entry(row, refusal))


def _entry(row: Any, refusal: Refusal | None = None) -> AuditEntry:
    return AuditEntry(
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        action=row.action,
        actor_subject=row.actor_subject,
        actor_username=row.actor_username,
        actor_roles=tuple(row.actor_roles or ()),
        request_id=row.request_id,
        client_ip=row.client_ip,
        user_agent=row.user_agent,
        traceparent=row.traceparent,
        changes=(row.changes or {}) if refusal is None else {},
        refusal=refusal,
    )


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


async def backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many rows are unsent, and when the oldest of them was written."""
    table = orm.outbox
    stmt = select(func.count(), func.min(table.c.created_at)).where(table.c.sent_at.is_(None))
    async with conn.begin():
        count, oldest = (await conn.execute(stmt)).one()
    if isinstance(oldest, str):  # SQLite: MIN() loses the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count or 0), oldest


async def try_advisory_lock(conn: AsyncConnection) -> bool:
    """Take the relay lock for this connection's session (PostgreSQL only)."""
    async with conn.begin():
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY})
    return bool(got)
