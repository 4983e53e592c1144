"""Domain events: facts, named in the past tense.

Each carries the resource as it is after the change (``data``, JSON-ready: the
body the HTTP API returns) and, for an update, what changed (``changes``:
``{field: {"before": ..., "after": ...}}``). A deletion carries the last state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event."""

    data: dict[str, Any]
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return str(self.data["id"])


class AuthorCreated(Event):
    __slots__ = ()


class AuthorUpdated(Event):
    __slots__ = ()


class AuthorDeleted(Event):
    __slots__ = ()


class BookCreated(Event):
    __slots__ = ()


class BookUpdated(Event):
    __slots__ = ()


class BookDeleted(Event):
    __slots__ = ()
