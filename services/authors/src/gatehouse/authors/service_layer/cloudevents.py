"""Domain events as CloudEvents and audit entries: one table row per event type.

Adding an aggregate adds rows here; nothing else maps events. The event's
``data`` is the resource as the HTTP API returns it; ``traceparent`` is the one of
the request that caused the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gatehouse.authors.adapters.outbox import AuditEntry, Refusal
from gatehouse.authors.domain import events
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.common.events import CloudEvent

SOURCE = "/gatehouse/authors"


@dataclass(frozen=True, slots=True)
class Mapping:
    type: str
    entity_type: str
    action: str


TABLE: dict[type[events.Event], Mapping] = {
    events.AuthorCreated: Mapping("gatehouse.author.created", "author", "created"),
    events.AuthorUpdated: Mapping("gatehouse.author.updated", "author", "updated"),
    events.AuthorDeleted: Mapping("gatehouse.author.deleted", "author", "deleted"),
    events.BookCreated: Mapping("gatehouse.book.created", "book", "created"),
    events.BookUpdated: Mapping("gatehouse.book.updated", "book", "updated"),
    events.BookDeleted: Mapping("gatehouse.book.deleted", "book", "deleted"),
}


def to_cloud_event(event: events.Event, context: RequestContext) -> CloudEvent:
    mapping = _mapping(event)
    return CloudEvent(
        source=SOURCE,
        type=mapping.type,
        subject=event.resource_id,
        data=event.data,
        traceparent=context.traceparent,
    )


def to_audit_entry(event: events.Event, context: RequestContext) -> AuditEntry:
    mapping = _mapping(event)
    return _entry(
        context, mapping.entity_type, event.resource_id, mapping.action, changes=_changes(event)
    )


def refusal_entry(
    context: RequestContext,
    entity_type: str,
    entity_id: str | None,
    action: str,
    refusal: Refusal,
) -> AuditEntry:
    """The audit entry of a write that was refused: who tried which action, and why."""
    return _entry(context, entity_type, entity_id, action, refusal=refusal)


def _entry(
    context: RequestContext, entity_type: str, entity_id: str | None, action: str, **rest: Any
) -> AuditEntry:
    principal = context.principal
    return AuditEntry(
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        actor_subject=principal.subject[:255] if principal else None,
        actor_username=context.actor[:255],
        actor_roles=tuple(sorted(principal.roles)) if principal else (),
        request_id=context.request_id,
        client_ip=context.client_ip,
        user_agent=context.user_agent,
        traceparent=context.traceparent,
        **rest,
    )


def _changes(event: events.Event) -> dict[str, dict[str, object]]:
    if isinstance(event, events.AuthorCreated | events.BookCreated):
        return {k: {"before": None, "after": v} for k, v in event.data.items()}
    if isinstance(event, events.AuthorDeleted | events.BookDeleted):
        return {k: {"before": v, "after": None} for k, v in event.data.items()}
    return event.changes


def _mapping(event: events.Event) -> Mapping:
    try:
        return TABLE[type(event)]
    except KeyError:
        raise TypeError(f"no CloudEvent mapping for {type(event).__name__}") from None


def event_types() -> list[str]:
    return [mapping.type for mapping in TABLE.values()]
