"""The ``Author`` aggregate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from gatehouse.authors.domain.errors import InvalidAuthor
from gatehouse.authors.domain.events import AuthorCreated, Event

NAME_MAX = 200
BIO_MAX = 2000


class Author:
    """An author; ``version`` grows by one with every change (optimistic concurrency)."""

    events: list[Event]

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
        self.bio = bio
        self.created_at = created_at
        self.updated_at = updated_at
        self.version = version
        self.events = []

    @classmethod
    def create(cls, name: str, bio: str = "", *, now: datetime | None = None) -> Author:
        """A new author, valid by construction, that raises ``AuthorCreated``."""
        stamp = now or datetime.now(UTC)
        author = cls(uuid.uuid4(), _valid_name(name), _valid_bio(bio), stamp, stamp)
        author.events.append(
            AuthorCreated(author.id, author.name, author.bio, stamp, stamp, author.version)
        )
        return author

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Author) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Author(id={self.id!s}, name={self.name!r}, version={self.version})"


def _valid_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidAuthor(f"name must be 1 to {NAME_MAX} characters", field="name")
    return name


def _valid_bio(bio: str) -> str:
    if len(bio) > BIO_MAX:
        raise InvalidAuthor(f"bio must be at most {BIO_MAX} characters", field="bio")
    return bio
