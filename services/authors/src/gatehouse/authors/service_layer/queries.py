"""Query handlers: reads by id (through the cache), lists and the audit trail."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from gatehouse.authors.adapters.cache import AbstractCache
from gatehouse.authors.adapters.outbox import AuditFilter, AuditRecord
from gatehouse.authors.adapters.repository import AuthorFilter, BookFilter
from gatehouse.authors.domain import text
from gatehouse.authors.domain.errors import AuthorNotFound, BookNotFound, InvalidBook
from gatehouse.authors.domain.isbn import canonical_isbn
from gatehouse.authors.domain.model import stamp
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.errors import InvalidParameter
from gatehouse.authors.service_layer.pagination import (
    AUTHOR_SORTS,
    BOOK_SORTS,
    MAX_PER_PAGE,
    Page,
    page_of,
    plan,
)
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork

AUDIT_ACTIONS = ("created", "updated", "deleted")
AUDIT_ENTITIES = ("author", "book")
AUDIT_OUTCOMES = ("succeeded", "refused")


async def get_author(
    query: messages.GetAuthor, uow: AbstractUnitOfWork, cache: AbstractCache
) -> dict[str, Any]:
    cached = await cache.get("author", query.id)
    if cached is not None:
        return cached
    author = await uow.authors.get(query.id)
    if author is None:
        raise AuthorNotFound(query.id)
    snapshot = author.snapshot()
    await cache.put("author", query.id, snapshot)
    return snapshot


async def get_book(
    query: messages.GetBook, uow: AbstractUnitOfWork, cache: AbstractCache
) -> dict[str, Any]:
    cached = await cache.get("book", query.id)
    if cached is not None:
        return cached
    book = await uow.books.get(query.id)
    if book is None:
        raise BookNotFound(query.id)
    snapshot = book.snapshot()
    await cache.put("book", query.id, snapshot)
    return snapshot


async def list_authors(query: messages.ListAuthors, uow: AbstractUnitOfWork) -> Page:
    window = plan(query.window, AUTHOR_SORTS)
    where = AuthorFilter(
        ids=query.ids,
        name_key=_key(query.name, "name"),
        search_key=_key(query.search, "search"),
        created_after=query.created_after,
        created_before=query.created_before,
        updated_after=query.updated_after,
        updated_before=query.updated_before,
    )
    found = await uow.authors.find(where, window.slice)
    return page_of(window, found, await uow.authors.count(where))


async def list_books(query: messages.ListBooks, uow: AbstractUnitOfWork) -> Page:
    window = plan(query.window, BOOK_SORTS)
    where = BookFilter(
        ids=query.ids,
        author_id=query.author_id,
        title_key=_key(query.title, "title"),
        search_key=_key(query.search, "search"),
        isbn=_isbn(query.isbn),
        year_from=query.year_from,
        year_to=query.year_to,
        created_after=query.created_after,
        created_before=query.created_before,
        updated_after=query.updated_after,
        updated_before=query.updated_before,
    )
    if query.author_id is not None and await uow.authors.get(query.author_id) is None:
        raise AuthorNotFound(query.author_id)
    found = await uow.books.find(where, window.slice)
    return page_of(window, found, await uow.books.count(where))


@dataclass(frozen=True, slots=True)
class AuditPage:
    items: list[dict[str, Any]]
    limit: int
    next_cursor: str | None

    def meta(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "next_cursor": self.next_cursor,
            "has_more": self.next_cursor is not None,
        }


async def list_audit(query: messages.ListAudit, uow: AbstractUnitOfWork) -> AuditPage:
    _check_audit(query)
    where = AuditFilter(
        entity_type=query.entity_type,
        entity_id=str(query.entity_id) if query.entity_id else None,
        actor=query.actor,
        action=query.action,
        since=query.since,
        until=query.until,
        before=_audit_position(query.cursor) if query.cursor else None,
        refused=query.outcome == "refused",
    )
    found = await uow.outbox.audit(where, query.limit + 1)
    items = found[: query.limit]
    more = len(found) > query.limit
    cursor = _audit_cursor(items[-1].id) if more else None
    return AuditPage([audit_json(record) for record in items], query.limit, cursor)


def audit_json(record: AuditRecord) -> dict[str, Any]:
    entry, refusal = record.entry, record.entry.refusal
    event = None if record.event_id is None else {"id": record.event_id, "type": record.event_type}
    return {
        "id": str(record.id),
        "occurred_at": stamp(record.occurred_at),
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "actor": {
            "subject": entry.actor_subject,
            "username": entry.actor_username,
            "roles": list(entry.actor_roles),
        },
        "request_id": entry.request_id,
        "client_ip": entry.client_ip,
        "user_agent": entry.user_agent,
        "traceparent": entry.traceparent,
        "outcome": "succeeded" if refusal is None else "refused",
        "refusal": None
        if refusal is None
        else {"status": refusal.status, "code": refusal.code, "fields": list(refusal.fields)},
        "event": event,
        "changes": entry.changes,
    }


def _check_audit(query: messages.ListAudit) -> None:
    if not 1 <= query.limit <= MAX_PER_PAGE:
        raise InvalidParameter("limit", f"must be 1 to {MAX_PER_PAGE}")
    if query.action is not None and query.action not in AUDIT_ACTIONS:
        raise InvalidParameter("action", f"must be one of {', '.join(AUDIT_ACTIONS)}")
    if query.entity_type is not None and query.entity_type not in AUDIT_ENTITIES:
        raise InvalidParameter("entity_type", f"must be one of {', '.join(AUDIT_ENTITIES)}")
    if query.outcome is not None and query.outcome not in AUDIT_OUTCOMES:
        raise InvalidParameter("outcome", f"must be one of {', '.join(AUDIT_OUTCOMES)}")


def _audit_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{row_id}".encode()).decode().rstrip("=")


def _audit_position(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("a") or not raw[1:].isdigit() or len(raw) > 20:
            raise ValueError(raw)
        return int(raw[1:])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter("cursor", "is not a cursor of the audit trail") from exc


def _key(value: str | None, parameter: str) -> str | None:
    if value is None:
        return None
    try:
        return text.filter_key(value[:1000], parameter)
    except Exception as exc:
        raise InvalidParameter(parameter, str(exc)) from exc


def _isbn(value: str | None) -> str | None:
    """The stored form of an ISBN filter; one that is not valid matches no book."""
    if value is None:
        return None
    try:
        return canonical_isbn(value)
    except InvalidBook:
        return value
