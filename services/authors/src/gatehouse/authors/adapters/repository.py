"""Repository ports of the aggregates, their SQLAlchemy adapters, and the list vocabulary.

All queries of authors and books live here. A list is a filter (``AuthorFilter``,
``BookFilter``) and a ``Slice`` (sort, keyset position or offset, limit); both
repositories answer it with one SELECT, and ``count`` with one more.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Insert, Select, Table, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from gatehouse.authors.adapters import orm
from gatehouse.authors.domain.errors import (
    AuthorHasBooks,
    AuthorNotFound,
    DuplicateAuthorName,
    DuplicateIsbn,
    StaleVersion,
)
from gatehouse.authors.domain.model import (
    Aggregate,
    Author,
    Book,
    author_snapshot,
    book_snapshot,
)

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort column: the aggregate attribute (and table column) and its direction."""

    attribute: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Slice:
    """Which rows of a list: ``after`` (keyset: the sort values then the id of the last row
    seen) wins over ``offset``; ``sort`` always ends with the id as a tie-breaker."""

    limit: int
    sort: tuple[SortKey, ...] = (SortKey("created_at"),)
    offset: int = 0
    after: tuple[Any, ...] | None = None

    @property
    def keys(self) -> tuple[SortKey, ...]:
        return (*self.sort, SortKey("id"))


@dataclass(frozen=True, slots=True)
class AuthorFilter:
    ids: tuple[UUID, ...] = ()
    name_key: str | None = None
    search_key: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class BookFilter:
    ids: tuple[UUID, ...] = ()
    author_id: UUID | None = None
    title_key: str | None = None
    search_key: str | None = None
    isbn: str | None = None
    year_from: int | None = None
    year_to: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuthorRow:
    """An author as a list reads it: its columns and its resource, without the ORM's
    identity map and per-object state (they cost a page of 50 a third of its CPU)."""

    id: UUID
    name: str
    name_key: str
    bio: str
    created_at: datetime
    updated_at: datetime
    version: int

    def snapshot(self) -> dict[str, Any]:
        return author_snapshot(self)


@dataclass(frozen=True, slots=True)
class BookRow:
    """A book as a list reads it (see :class:`AuthorRow`)."""

    id: UUID
    author_id: UUID
    title: str
    title_key: str
    year: int
    isbn: str | None
    created_at: datetime
    updated_at: datetime
    version: int

    def snapshot(self) -> dict[str, Any]:
        return book_snapshot(self)


class AbstractRepository(abc.ABC, Generic[A]):
    """The port; ``seen`` holds the aggregates this unit of work touched (for their events)."""

    def __init__(self) -> None:
        self.seen: set[A] = set()

    async def add(self, aggregate: A) -> None:
        """Add a new aggregate; a uniqueness clash raises the domain's conflict error."""
        await self._add(aggregate)
        self.seen.add(aggregate)

    async def get(self, aggregate_id: UUID) -> A | None:
        aggregate = await self._get(aggregate_id)
        if aggregate is not None:
            self.seen.add(aggregate)
        return aggregate

    async def save(self, aggregate: A) -> None:
        """Write the changes of an aggregate got from :meth:`get` (checks its version)."""
        await self._save(aggregate)

    async def remove(self, aggregate: A) -> None:
        """Delete an aggregate got from :meth:`get`; call ``aggregate.delete()`` first."""
        await self._remove(aggregate)
        self.seen.add(aggregate)

    @abc.abstractmethod
    async def _add(self, aggregate: A) -> None: ...

    @abc.abstractmethod
    async def _get(self, aggregate_id: UUID) -> A | None: ...

    @abc.abstractmethod
    async def _save(self, aggregate: A) -> None: ...

    @abc.abstractmethod
    async def _remove(self, aggregate: A) -> None: ...


class AbstractAuthorRepository(AbstractRepository[Author]):
    @abc.abstractmethod
    async def find(self, where: AuthorFilter, window: Slice) -> list[AuthorRow]:
        """Authors matching ``where``, in ``window.sort`` order (read-only rows)."""

    @abc.abstractmethod
    async def count(self, where: AuthorFilter) -> int: ...


class AbstractBookRepository(AbstractRepository[Book]):
    @abc.abstractmethod
    async def find(self, where: BookFilter, window: Slice) -> list[BookRow]: ...

    @abc.abstractmethod
    async def count(self, where: BookFilter) -> int: ...

    @abc.abstractmethod
    async def count_by_author(self, author_id: UUID) -> int: ...


class _SqlRepository(Generic[A]):
    """Flush-now writes, so that constraints answer inside the call that broke them."""

    cls: type[A]
    table: Table
    columns: tuple[str, ...]
    inserts: Insert

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _get(self, aggregate_id: UUID) -> A | None:
        return await self.session.get(self.cls, aggregate_id)

    async def _flush(self, aggregate: A) -> None:
        # A failed flush expires the aggregate: keep what the errors need beforehand.
        facts = dict(vars(aggregate))
        try:
            await self.session.flush()
        except IntegrityError as exc:
            raise self._conflict(facts, exc) from None
        except StaleDataError:
            # UPDATE/DELETE ... WHERE version = <read> matched nothing: changed meanwhile.
            raise StaleVersion(facts["version"], None) from None

    async def _add(self, aggregate: A) -> None:
        # One INSERT of the row, not the ORM's flush of a pending object (its unit of work
        # cost a create more CPU than the statement); then the aggregate joins the
        # session as persistent, so a later change of it in this unit is an UPDATE.
        row = {name: getattr(aggregate, name) for name in self.columns}
        try:
            await self.session.execute(self.inserts, row)
        except IntegrityError as exc:
            raise self._conflict(row, exc) from None
        make_transient_to_detached(aggregate)
        self.session.add(aggregate)

    async def _remove(self, aggregate: A) -> None:
        await self.session.delete(aggregate)
        await self._flush(aggregate)

    def _conflict(self, facts: dict[str, Any], exc: IntegrityError) -> Exception:
        return exc


class SqlAlchemyAuthorRepository(_SqlRepository[Author], AbstractAuthorRepository):
    cls = Author
    table = orm.authors
    columns = tuple(table.c.keys())
    inserts = insert(table)

    def __init__(self, session: AsyncSession) -> None:
        AbstractAuthorRepository.__init__(self)
        _SqlRepository.__init__(self, session)

    async def _save(self, aggregate: Author) -> None:
        await self._flush(aggregate)

    def _conflict(self, facts: dict[str, Any], exc: IntegrityError) -> Exception:
        message = str(exc.orig).lower()
        if "name_key" in message:
            return DuplicateAuthorName(facts["name"])
        if "foreign key" in message:  # a book was added while the author was deleted
            return AuthorHasBooks(facts["id"], None)
        return exc

    async def find(self, where: AuthorFilter, window: Slice) -> list[AuthorRow]:
        stmt = _columns(orm.authors, AuthorRow).where(*_author_filters(where))
        rows = await self.session.execute(_windowed(stmt, orm.authors, window))
        return [AuthorRow(*row) for row in rows]

    async def count(self, where: AuthorFilter) -> int:
        stmt = select(func.count()).select_from(orm.authors).where(*_author_filters(where))
        return int(await self.session.scalar(stmt) or 0)


class SqlAlchemyBookRepository(_SqlRepository[Book], AbstractBookRepository):
    cls = Book
    table = orm.books
    columns = tuple(table.c.keys())
    inserts = insert(table)

    def __init__(self, session: AsyncSession) -> None:
        AbstractBookRepository.__init__(self)
        _SqlRepository.__init__(self, session)

    async def _save(self, aggregate: Book) -> None:
        await self._flush(aggregate)

    def _conflict(self, facts: dict[str, Any], exc: IntegrityError) -> Exception:
        message = str(exc.orig).lower()
        if "isbn" in message and facts.get("isbn"):
            return DuplicateIsbn(facts["isbn"])
        if "foreign key" in message:  # the author was deleted meanwhile
            return AuthorNotFound(facts["author_id"])
        return exc

    async def find(self, where: BookFilter, window: Slice) -> list[BookRow]:
        stmt = _columns(orm.books, BookRow).where(*_book_filters(where))
        rows = await self.session.execute(_windowed(stmt, orm.books, window))
        return [BookRow(*row) for row in rows]

    async def count(self, where: BookFilter) -> int:
        stmt = select(func.count()).select_from(orm.books).where(*_book_filters(where))
        return int(await self.session.scalar(stmt) or 0)

    async def count_by_author(self, author_id: UUID) -> int:
        return await self.count(BookFilter(author_id=author_id))


def _columns(table: Table, row: type[Any]) -> Select[Any]:
    """SELECT the columns of ``table`` in the order of the fields of ``row``."""
    return select(*(table.c[name] for name in row.__dataclass_fields__))


def _windowed(stmt: Select[Any], table: Any, window: Slice) -> Select[Any]:
    columns = [table.c[key.attribute] for key in window.keys]
    order = [
        c.desc() if k.descending else c.asc() for c, k in zip(columns, window.keys, strict=True)
    ]
    stmt = stmt.order_by(*order).limit(window.limit)
    if window.after is not None:
        return stmt.where(_after(columns, window.keys, window.after))
    return stmt.offset(window.offset)


def _after(columns: Sequence[Any], keys: Sequence[SortKey], values: Sequence[Any]) -> Any:
    """Rows strictly after ``values`` in the sort order: (a > x) OR (a = x AND b > y) ..."""
    clauses = []
    for i, (column, key) in enumerate(zip(columns, keys, strict=True)):
        equal = [columns[j] == values[j] for j in range(i)]
        beyond = column < values[i] if key.descending else column > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _like(column: Any, term: str) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column.contains(term, autoescape=True)
    return result


def _common_filters(table: Any, where: AuthorFilter | BookFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if where.ids:
        found.append(table.c.id.in_(where.ids))
    for column, bound, later in (
        (table.c.created_at, where.created_after, True),
        (table.c.created_at, where.created_before, False),
        (table.c.updated_at, where.updated_after, True),
        (table.c.updated_at, where.updated_before, False),
    ):
        if bound is not None:
            found.append(column >= bound if later else column < bound)
    return found


def _author_filters(where: AuthorFilter) -> list[ColumnElement[bool]]:
    table = orm.authors
    found = _common_filters(table, where)
    if where.name_key is not None:
        found.append(table.c.name_key == where.name_key)
    if where.search_key:
        found.append(_like(table.c.name_key, where.search_key))
    return found


def _book_filters(where: BookFilter) -> list[ColumnElement[bool]]:
    table = orm.books
    found = _common_filters(table, where)
    if where.author_id is not None:
        found.append(table.c.author_id == where.author_id)
    if where.title_key is not None:
        found.append(table.c.title_key == where.title_key)
    if where.search_key:
        found.append(_like(table.c.title_key, where.search_key))
    if where.isbn is not None:
        found.append(table.c.isbn == where.isbn)
    if where.year_from is not None:
        found.append(table.c.year >= where.year_from)
    if where.year_to is not None:
        found.append(table.c.year <= where.year_to)
    return found
