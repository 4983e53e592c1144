"""Queries: what a caller asks to read (commands live in the domain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Query:
    """Base of every query."""


@dataclass(frozen=True, slots=True)
class Window:
    """Which slice of a list: ``cursor`` (keyset) or ``page`` (offset), and the sort."""

    per_page: int = 20
    page: int | None = None
    cursor: str | None = None
    sort: str | None = None


@dataclass(frozen=True, slots=True)
class GetAuthor(Query):
    id: UUID


@dataclass(frozen=True, slots=True)
class ListAuthors(Query):
    window: Window = field(default_factory=Window)
    ids: tuple[UUID, ...] = ()
    name: str | None = None
    search: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class GetBook(Query):
    id: UUID


@dataclass(frozen=True, slots=True)
class ListBooks(Query):
    window: Window = field(default_factory=Window)
    ids: tuple[UUID, ...] = ()
    author_id: UUID | None = None
    title: str | None = None
    search: str | None = None
    isbn: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListAudit(Query):
    """Audit records, newest first; every filter given must hold (AND)."""

    limit: int = 50
    cursor: str | None = None
    entity_type: str | None = None
    entity_id: UUID | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None  # ``succeeded`` (default) or ``refused``
