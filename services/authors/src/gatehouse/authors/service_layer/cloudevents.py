"""Domain events as CloudEvents, per the event table of docs/architecture.md."""

from __future__ import annotations

from typing import Any

from gatehouse.authors.domain.events import AuthorCreated, Event
from gatehouse.common.events import CloudEvent

SOURCE = "/gatehouse/authors"


def to_cloud_event(event: Event) -> CloudEvent:
    if isinstance(event, AuthorCreated):
        return CloudEvent(
            source=SOURCE,
            type="gatehouse.author.created",
            subject=str(event.id),
            time=event.created_at,
            data=_author_data(event),
        )
    raise TypeError(f"no CloudEvent mapping for {type(event).__name__}")


def _author_data(event: AuthorCreated) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "name": event.name,
        "bio": event.bio,
        "created_at": event.created_at.isoformat(),
        "updated_at": event.updated_at.isoformat(),
        "version": event.version,
    }
