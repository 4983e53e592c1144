"""In-memory adapters of the authors ports: real implementations, for service-layer tests.

``FakeDatabase`` keeps what was committed; each ``FakeUnitOfWork`` works on copies
and writes them back on commit (versions checked as the SQL adapter does, keys
unique as its constraints are), so a rollback leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from gatehouse.authors.adapters.cache import NoCache
from gatehouse.authors.adapters.idempotency import AbstractIdempotencyStore, Stored
from gatehouse.authors.adapters.outbox import (
    AbstractOutbox,
    AuditEntry,
    AuditFilter,
    AuditRecord,
)
from gatehouse.authors.adapters.repository import (
    AbstractAuthorRepository,
    AbstractBookRepository,
    AuthorFilter,
    BookFilter,
    Slice,
)
from gatehouse.authors.domain.errors import (
    AuthorHasBooks,
    AuthorNotFound,
    DuplicateAuthorName,
    DuplicateIsbn,
    StaleVersion,
)
from gatehouse.authors.domain.model import Aggregate, Author, Book
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messagebus import MessageBus
from gatehouse.authors.service_layer.registry import routes
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork
from gatehouse.common.events import CloudEvent

A = TypeVar("A", bound=Aggregate)


@dataclass
class FakeDatabase:
    authors: dict[UUID, Author] = field(default_factory=dict)
    books: dict[UUID, Book] = field(default_factory=dict)
    outbox: list[tuple[CloudEvent, AuditEntry, datetime]] = field(default_factory=list)
    refusals: list[tuple[AuditEntry, datetime]] = field(default_factory=list)
    keys: dict[tuple[str, str], tuple[Stored, datetime]] = field(default_factory=dict)
    key_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    commits: int = 0

    @property
    def events(self) -> list[CloudEvent]:
        return [event for event, _, _ in self.outbox]


class _FakeRepository(Generic[A]):
    def __init__(self, rows: dict[UUID, A]) -> None:
        self.rows = rows  # committed
        self.working: dict[UUID, A] = {}
        self.loaded: dict[UUID, int] = {}
        self.removed: set[UUID] = set()

    def _visible(self) -> dict[UUID, A]:
        merged = {**self.rows, **self.working}
        return {k: v for k, v in merged.items() if k not in self.removed}

    async def _get(self, aggregate_id: UUID) -> A | None:
        if aggregate_id in self.removed:
            return None
        if aggregate_id not in self.working and aggregate_id in self.rows:
            found = copy.deepcopy(self.rows[aggregate_id])
            found.events = []
            self.working[aggregate_id] = found
            self.loaded[aggregate_id] = found.version
        return self.working.get(aggregate_id)

    async def _save(self, aggregate: A) -> None:
        committed = self.rows.get(aggregate.id)
        if committed is None or committed.version != self.loaded.get(aggregate.id):
            raise StaleVersion(aggregate.version, None)

    async def _remove(self, aggregate: A) -> None:
        await self._save(aggregate)
        self.removed.add(aggregate.id)

    def flush(self) -> None:
        for aggregate_id, aggregate in self.working.items():
            committed = self.rows.get(aggregate_id)
            if committed is not None and committed.version != self.loaded.get(aggregate_id):
                raise StaleVersion(aggregate.version, None)
        for aggregate_id in self.removed:
            self.rows.pop(aggregate_id, None)
        for aggregate_id, aggregate in self.working.items():
            if aggregate_id not in self.removed:
                self.rows[aggregate_id] = copy.deepcopy(aggregate)

    def page(self, found: list[A], window: Slice) -> list[A]:
        def sort_key(item: A) -> tuple[Any, ...]:
            return tuple(_Directed(getattr(item, k.attribute), k.descending) for k in window.keys)

        ordered = sorted(found, key=sort_key)
        if window.after is not None:
            position = tuple(
                _Directed(v, k.descending) for v, k in zip(window.after, window.keys, strict=True)
            )
            ordered = [item for item in ordered if sort_key(item) > position]
        else:
            ordered = ordered[window.offset :]
        return ordered[: window.limit]


class _Directed:
    def __init__(self, value: Any, descending: bool) -> None:
        self.value, self.descending = value, descending

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Directed) and self.value == other.value

    def __lt__(self, other: _Directed) -> bool:
        return bool(self.value > other.value if self.descending else self.value < other.value)

    def __gt__(self, other: _Directed) -> bool:
        return other < self


def _common(item: Aggregate, where: AuthorFilter | BookFilter) -> bool:
    return (
        (not where.ids or item.id in where.ids)
        and (where.created_after is None or item.created_at >= where.created_after)
        and (where.created_before is None or item.created_at < where.created_before)
        and (where.updated_after is None or item.updated_at >= where.updated_after)
        and (where.updated_before is None or item.updated_at < where.updated_before)
    )


class FakeAuthorRepository(_FakeRepository[Author], AbstractAuthorRepository):
    def __init__(self, db: FakeDatabase) -> None:
        AbstractAuthorRepository.__init__(self)
        _FakeRepository.__init__(self, db.authors)
        self.db = db

    async def _add(self, aggregate: Author) -> None:
        if any(a.name_key == aggregate.name_key for a in self._visible().values()):
            raise DuplicateAuthorName(aggregate.name)
        self.working[aggregate.id] = aggregate

    async def _save(self, aggregate: Author) -> None:
        await super()._save(aggregate)
        if any(
            a.name_key == aggregate.name_key and a.id != aggregate.id
            for a in self._visible().values()
        ):
            raise DuplicateAuthorName(aggregate.name)

    async def _remove(self, aggregate: Author) -> None:
        if any(b.author_id == aggregate.id for b in self.db.books.values()):
            raise AuthorHasBooks(aggregate.id, None)
        await super()._remove(aggregate)

    def _matches(self, author: Author, where: AuthorFilter) -> bool:
        return (
            _common(author, where)
            and (where.name_key is None or author.name_key == where.name_key)
            and (not where.search_key or where.search_key in author.name_key)
        )

    async def find(self, where: AuthorFilter, window: Slice) -> list[Author]:
        found = [a for a in self._visible().values() if self._matches(a, where)]
        return self.page(found, window)

    async def count(self, where: AuthorFilter) -> int:
        return sum(self._matches(a, where) for a in self._visible().values())


class FakeBookRepository(_FakeRepository[Book], AbstractBookRepository):
    def __init__(self, db: FakeDatabase) -> None:
        AbstractBookRepository.__init__(self)
        _FakeRepository.__init__(self, db.books)
        self.db = db

    async def _add(self, aggregate: Book) -> None:
        self._check(aggregate)
        self.working[aggregate.id] = aggregate

    async def _save(self, aggregate: Book) -> None:
        await super()._save(aggregate)
        self._check(aggregate)

    def _check(self, book: Book) -> None:
        if book.author_id not in self.db.authors:
            raise AuthorNotFound(book.author_id)
        if book.isbn and any(
            b.isbn == book.isbn and b.id != book.id for b in self._visible().values()
        ):
            raise DuplicateIsbn(book.isbn)

    def _matches(self, book: Book, where: BookFilter) -> bool:
        return (
            _common(book, where)
            and (where.author_id is None or book.author_id == where.author_id)
            and (where.title_key is None or book.title_key == where.title_key)
            and (not where.search_key or where.search_key in book.title_key)
            and (where.isbn is None or book.isbn == where.isbn)
            and (where.year_from is None or book.year >= where.year_from)
            and (where.year_to is None or book.year <= where.year_to)
        )

    async def find(self, where: BookFilter, window: Slice) -> list[Book]:
        found = [b for b in self._visible().values() if self._matches(b, where)]
        return self.page(found, window)

    async def count(self, where: BookFilter) -> int:
        return sum(self._matches(b, where) for b in self._visible().values())

    async def count_by_author(self, author_id: UUID) -> int:
        return await self.count(BookFilter(author_id=author_id))


class FakeOutbox(AbstractOutbox):
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.pending: list[tuple[CloudEvent, AuditEntry, datetime]] = []
        self.refused: list[tuple[AuditEntry, datetime]] = []

    async def add(self, event: CloudEvent, entry: AuditEntry) -> None:
        self.pending.append((event, entry, datetime.now(UTC)))

    async def refuse(self, entry: AuditEntry) -> None:
        assert entry.refusal is not None
        self.refused.append((entry, datetime.now(UTC)))

    async def audit(self, where: AuditFilter, limit: int) -> list[AuditRecord]:
        if where.refused:
            records = [
                AuditRecord(position + 1, moment, None, None, entry)
                for position, (entry, moment) in enumerate(self.db.refusals)
            ]
        else:
            records = [
                AuditRecord(position + 1, moment, event.id, event.type, entry)
                for position, (event, entry, moment) in enumerate(self.db.outbox)
            ]
        return [r for r in reversed(records) if _audit_matches(r, where)][:limit]


def _audit_matches(record: AuditRecord, where: AuditFilter) -> bool:
    entry = record.entry
    return (
        (where.entity_type is None or entry.entity_type == where.entity_type)
        and (where.entity_id is None or entry.entity_id == where.entity_id)
        and (where.actor is None or entry.actor_username == where.actor)
        and (where.action is None or entry.action == where.action)
        and (where.since is None or record.occurred_at >= where.since)
        and (where.until is None or record.occurred_at < where.until)
        and (where.before is None or record.id < where.before)
    )


class FakeIdempotencyStore(AbstractIdempotencyStore):
    """Keys are claimed under a lock held until the unit of work ends (as a row lock is)."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.held: list[asyncio.Lock] = []
        self.pending: dict[tuple[str, str], Stored] = {}
        self.expiry: dict[tuple[str, str], datetime] = {}

    async def claim(
        self, subject: str, key: str, fingerprint: str, ttl: timedelta
    ) -> Stored | None:
        lock = self.db.key_locks.setdefault((subject, key), asyncio.Lock())
        await lock.acquire()
        self.held.append(lock)
        now = datetime.now(UTC)
        known = self.db.keys.get((subject, key))
        if known is not None and known[1] >= now:
            return known[0]
        self.pending[(subject, key)] = Stored(fingerprint, None)
        self.expiry[(subject, key)] = now + ttl
        return None

    async def complete(self, subject: str, key: str, result: Any) -> None:
        claimed = self.pending[(subject, key)]
        self.pending[(subject, key)] = Stored(claimed.fingerprint, result)

    async def purge(self, now: datetime) -> int:
        expired = [k for k, (_, until) in self.db.keys.items() if until < now]
        for k in expired:
            del self.db.keys[k]
        return len(expired)

    def flush(self) -> None:
        for k, stored in self.pending.items():
            self.db.keys[k] = (stored, self.expiry[k])

    def release(self) -> None:
        for lock in self.held:
            lock.release()
        self.held.clear()


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(self, db: FakeDatabase, context: RequestContext | None = None) -> None:
        super().__init__(context)
        self.db = db

    async def __aenter__(self) -> FakeUnitOfWork:
        self.authors: FakeAuthorRepository = FakeAuthorRepository(self.db)
        self.books: FakeBookRepository = FakeBookRepository(self.db)
        self.outbox: FakeOutbox = FakeOutbox(self.db)
        self.idempotency: FakeIdempotencyStore = FakeIdempotencyStore(self.db)
        await super().__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.rollback()
        self.idempotency.release()

    async def _commit(self) -> None:
        self.authors.flush()
        self.books.flush()
        self.idempotency.flush()
        self.db.outbox += self.outbox.pending
        self.db.refusals += self.outbox.refused
        self.outbox.pending, self.outbox.refused = [], []
        self.idempotency.pending.clear()
        self.db.commits += 1

    async def rollback(self) -> None:
        self.outbox.pending, self.outbox.refused = [], []
        self.idempotency.pending.clear()
        for repository in (self.authors, self.books):
            repository.working.clear()
            repository.removed.clear()


def fake_bus(db: FakeDatabase | None = None) -> tuple[MessageBus, FakeDatabase]:
    """The real message bus and registry over the in-memory adapters."""
    db = db or FakeDatabase()
    bus = MessageBus(lambda context, _writes: FakeUnitOfWork(db, context), routes(NoCache()))
    return bus, db
