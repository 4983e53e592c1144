"""Domain events: facts, named in the past tense."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event."""


@dataclass(frozen=True, slots=True)
class AuthorCreated(Event):
    id: UUID
    name: str
    bio: str
    created_at: datetime
    updated_at: datetime
    version: int
