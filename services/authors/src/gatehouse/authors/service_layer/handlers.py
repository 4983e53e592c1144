"""Handlers of the authors use cases. They call ``uow.commit()``; only the unit of work
touches the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from gatehouse.authors.adapters.repository import AuthorQuery
from gatehouse.authors.domain.commands import CreateAuthor
from gatehouse.authors.domain.errors import AuthorNotFound
from gatehouse.authors.domain.model import Author
from gatehouse.authors.service_layer.pagination import (
    MAX_PER_PAGE,
    Page,
    decode_cursor,
    encode_cursor,
)
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork
from gatehouse.common.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class ListAuthors:
    """A page of authors; ``cursor`` (keyset) takes precedence over ``page`` (offset)."""

    page: int = 1
    per_page: int = 20
    name: str | None = None
    search: str | None = None
    cursor: str | None = None


async def create_author(command: CreateAuthor, uow: AbstractUnitOfWork) -> Author:
    async with uow:
        author = Author.create(command.name, command.bio)
        await uow.authors.add(author)
        await uow.commit()
    return author


async def get_author(author_id: UUID, uow: AbstractUnitOfWork) -> Author:
    async with uow:
        author = await uow.authors.get(author_id)
    if author is None:
        raise AuthorNotFound(author_id)
    return author


async def list_authors(query: ListAuthors, uow: AbstractUnitOfWork) -> Page[Author]:
    _check_window(query)
    window = AuthorQuery(
        limit=query.per_page + 1,  # one more tells whether another page follows
        offset=(query.page - 1) * query.per_page,
        name=query.name,
        search=query.search,
        after=decode_cursor(query.cursor) if query.cursor else None,
    )
    async with uow:
        found = await uow.authors.find(window)
        total = await uow.authors.count(window)
    items = found[: query.per_page]
    more = len(found) > query.per_page
    cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page(items, query.page, query.per_page, total, cursor)


def _check_window(query: ListAuthors) -> None:
    if query.page < 1:
        raise ValidationFailed("page must be at least 1", field="page")
    if not 1 <= query.per_page <= MAX_PER_PAGE:
        raise ValidationFailed(f"per_page must be 1 to {MAX_PER_PAGE}", field="per_page")
