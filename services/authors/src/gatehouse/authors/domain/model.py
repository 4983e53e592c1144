"""The ``Author`` and ``Book`` aggregates.

Each change raises an event carrying the resource as it is afterwards and, for an
update, what changed; ``version`` grows by one with every change that changes
something (optimistic concurrency: the adapters write ``WHERE version = old``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from gatehouse.authors.domain import text
from gatehouse.authors.domain.errors import InvalidBook, StaleVersion
from gatehouse.authors.domain.events import (
    AuthorCreated,
    AuthorDeleted,
    AuthorUpdated,
    BookCreated,
    BookDeleted,
    BookUpdated,
    Event,
)
from gatehouse.authors.domain.isbn import canonical_isbn

NAME_MAX = 200
BIO_MAX = 4000
# A bio once its HTML is cleaned (nh3 adds rel="noopener noreferrer" to links).
STORED_BIO_MAX = 2 * BIO_MAX
TITLE_MAX = 300
YEAR_MIN, YEAR_MAX = -3000, 9999


def stamp(moment: datetime) -> str:
    """A timestamp as the API writes it (RFC 3339, UTC, ``Z``)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def author_snapshot(author: Any) -> dict[str, Any]:
    """The resource of an author: of an :class:`Author`, or of a row with its fields."""
    return {
        "id": str(author.id),
        "name": author.name,
        "bio": author.bio,
        "created_at": stamp(author.created_at),
        "updated_at": stamp(author.updated_at),
        "version": author.version,
    }


def book_snapshot(book: Any) -> dict[str, Any]:
    """The resource of a book: of a :class:`Book`, or of a row with its fields."""
    return {
        "id": str(book.id),
        "author_id": str(book.author_id),
        "title": book.title,
        "year": book.year,
        "isbn": book.isbn,
        "created_at": stamp(book.created_at),
        "updated_at": stamp(book.updated_at),
        "version": book.version,
    }


class Aggregate:
    """What authors and books share: identity, timestamps, version and pending events."""

    id: UUID
    created_at: datetime
    updated_at: datetime
    version: int
    events: list[Event]

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def check_version(self, expected: int | None) -> None:
        """Raise :class:`StaleVersion` unless ``expected`` is ``None`` or the current version."""
        if expected is not None and expected != self.version:
            raise StaleVersion(expected, self.version)

    def _apply(self, fields: dict[str, Any], updated: type[Event], now: datetime | None) -> None:
        changes = {
            name: {"before": getattr(self, name), "after": value}
            for name, value in fields.items()
            if getattr(self, name) != value
        }
        if not changes:
            return
        for name, change in changes.items():
            setattr(self, name, change["after"])
        self._after_change()
        self.updated_at = now or datetime.now(UTC)
        self.version += 1
        self.events.append(updated(self.snapshot(), _json_changes(changes)))

    def _after_change(self) -> None:
        """Recompute derived fields (comparison keys) after fields changed."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


class Author(Aggregate):
    """An author; names are unique by :func:`text.key`."""

    def __init__(
        self,
        id: UUID,
        name: str,
        bio: str,
        created_at: datetime,
        updated_at: datetime,
        version: int = 1,
    ) -> None:
        self.id = id
        self.name = name
        self.name_key = text.key(name)
        self.bio = bio
        self.created_at = created_at
        self.updated_at = updated_at
        self.version = version
        self.events = []

    @classmethod
    def create(cls, name: str, bio: str = "", *, now: datetime | None = None) -> Author:
        """A new author, valid by construction, that raises ``AuthorCreated``."""
        moment = now or datetime.now(UTC)
        author = cls(uuid.uuid4(), valid_name(name), valid_bio(bio), moment, moment)
        author.events.append(AuthorCreated(author.snapshot()))
        return author

    def update(self, *, now: datetime | None = None, **fields: Any) -> None:
        """Change ``name`` and/or ``bio``; raises ``AuthorUpdated`` if anything changed."""
        self._apply(self.validated(**fields), AuthorUpdated, now)

    @staticmethod
    def validated(**fields: Any) -> dict[str, Any]:
        """``fields`` checked and normalised (raises before anything is looked up)."""
        return _validated(fields, {"name": valid_name, "bio": valid_bio}, "authors")

    def delete(self) -> None:
        self.events.append(AuthorDeleted(self.snapshot()))

    def _after_change(self) -> None:
        self.name_key = text.key(self.name)

    def snapshot(self) -> dict[str, Any]:
        return author_snapshot(self)

    def __repr__(self) -> str:
        return f"Author(id={self.id!s}, name={self.name!r}, version={self.version})"


class Book(Aggregate):
    """A book of one author; an ISBN, when given, is valid and unique."""

    def __init__(
        self,
        id: UUID,
        author_id: UUID,
        title: str,
        year: int,
        isbn: str | None,
        created_at: datetime,
        updated_at: datetime,
        version: int = 1,
    ) -> None:
        self.id = id
        self.author_id = author_id
        self.title = title
        self.title_key = text.key(title)
        self.year = year
        self.isbn = isbn
        self.created_at = created_at
        self.updated_at = updated_at
        self.version = version
        self.events = []

    @classmethod
    def create(
        cls,
        author_id: UUID,
        title: str,
        year: int,
        isbn: str | None = None,
        *,
        now: datetime | None = None,
    ) -> Book:
        moment = now or datetime.now(UTC)
        book = cls(
            uuid.uuid4(),
            author_id,
            valid_title(title),
            valid_year(year),
            valid_isbn(isbn),
            moment,
            moment,
        )
        book.events.append(BookCreated(book.snapshot()))
        return book

    def update(self, *, now: datetime | None = None, **fields: Any) -> None:
        self._apply(self.validated(**fields), BookUpdated, now)

    @staticmethod
    def validated(**fields: Any) -> dict[str, Any]:
        checkers: dict[str, Callable[[Any], Any]] = {
            "author_id": _same,
            "title": valid_title,
            "year": valid_year,
            "isbn": valid_isbn,
        }
        return _validated(fields, checkers, "books")

    def delete(self) -> None:
        self.events.append(BookDeleted(self.snapshot()))

    def _after_change(self) -> None:
        self.title_key = text.key(self.title)

    def snapshot(self) -> dict[str, Any]:
        return book_snapshot(self)

    def __repr__(self) -> str:
        return f"Book(id={self.id!s}, title={self.title!r}, version={self.version})"


def valid_name(name: str) -> str:
    return text.clean(name, "name", max_length=NAME_MAX)


def valid_bio(bio: str, *, max_length: int = STORED_BIO_MAX) -> str:
    """A bio; callers check what the client sent against :data:`BIO_MAX` first."""
    return text.clean(bio, "bio", max_length=max_length, multiline=True)


def valid_title(title: str) -> str:
    return text.clean(title, "title", max_length=TITLE_MAX)


def valid_year(year: int) -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not YEAR_MIN <= year <= YEAR_MAX:
        raise InvalidBook("year", f"must be a whole number from {YEAR_MIN} to {YEAR_MAX}")
    return year


def valid_isbn(isbn: str | None) -> str | None:
    return None if isbn is None else canonical_isbn(isbn)


def _validated(
    fields: dict[str, Any], checkers: dict[str, Callable[[Any], Any]], kind: str
) -> dict[str, Any]:
    unknown = set(fields) - set(checkers)
    if unknown:
        raise TypeError(f"{kind} have no field(s) {sorted(unknown)}")
    return {name: checkers[name](value) for name, value in fields.items()}


def _same(value: UUID) -> UUID:
    return value


def _json_changes(changes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {side: str(value) if isinstance(value, UUID) else value for side, value in c.items()}
        for name, c in changes.items()
    }
