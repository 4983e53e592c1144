"""The author repository port, its SQLAlchemy adapter, and the list query they share."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse.authors.adapters import orm
from gatehouse.authors.domain.errors import DuplicateAuthorName
from gatehouse.authors.domain.model import Author


@dataclass(frozen=True, slots=True)
class AuthorQuery:
    """Filters and a window over authors ordered by ``(created_at, id)``.

    ``after`` is a keyset position: when set, ``offset`` is ignored.
    """

    limit: int
    offset: int = 0
    name: str | None = None
    search: str | None = None
    after: tuple[datetime, UUID] | None = None


class AbstractAuthorRepository(abc.ABC):
    """The port; ``seen`` holds the aggregates this unit of work touched (for their events)."""

    def __init__(self) -> None:
        self.seen: set[Author] = set()

    async def add(self, author: Author) -> None:
        """Add a new author; raises ``DuplicateAuthorName`` when the name is taken."""
        await self._add(author)
        self.seen.add(author)

    async def get(self, author_id: UUID) -> Author | None:
        author = await self._get(author_id)
        if author is not None:
            self.seen.add(author)
        return author

    @abc.abstractmethod
    async def _add(self, author: Author) -> None: ...

    @abc.abstractmethod
    async def _get(self, author_id: UUID) -> Author | None: ...

    @abc.abstractmethod
    async def find(self, query: AuthorQuery) -> list[Author]:
        """Authors matching ``query`` in ``(created_at, id)`` order."""

    @abc.abstractmethod
    async def count(self, query: AuthorQuery) -> int:
        """How many authors match the filters of ``query`` (window ignored)."""


class SqlAlchemyAuthorRepository(AbstractAuthorRepository):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session

    async def _add(self, author: Author) -> None:
        self.session.add(author)
        try:
            # Flush now so the UNIQUE constraint answers here, as a domain error.
            await self.session.flush()
        except IntegrityError as exc:
            if _violates_unique_name(exc):
                raise DuplicateAuthorName(author.name) from None
            raise

    async def _get(self, author_id: UUID) -> Author | None:
        return await self.session.get(Author, author_id)

    async def find(self, query: AuthorQuery) -> list[Author]:
        table = orm.authors
        stmt = select(Author).where(*_filters(query)).order_by(table.c.created_at, table.c.id)
        if query.after is not None:
            stmt = stmt.where(_after(*query.after))
        else:
            stmt = stmt.offset(query.offset)
        result = await self.session.scalars(stmt.limit(query.limit))
        return list(result)

    async def count(self, query: AuthorQuery) -> int:
        stmt = select(func.count()).select_from(orm.authors).where(*_filters(query))
        return int(await self.session.scalar(stmt) or 0)


def _filters(query: AuthorQuery) -> list[ColumnElement[bool]]:
    table = orm.authors
    filters: list[ColumnElement[bool]] = []
    if query.name is not None:
        filters.append(table.c.name == query.name)
    if query.search:
        term = query.search.lower()
        filters.append(
            or_(
                func.lower(table.c.name).contains(term, autoescape=True),
                func.lower(table.c.bio).contains(term, autoescape=True),
            )
        )
    return filters


def _after(created_at: datetime, author_id: UUID) -> ColumnElement[bool]:
    table = orm.authors
    return or_(
        table.c.created_at > created_at,
        and_(table.c.created_at == created_at, table.c.id > author_id),
    )


def _violates_unique_name(exc: IntegrityError) -> bool:
    message: Any = str(exc.orig)
    return "uq_authors_name" in message or "authors.name" in message
