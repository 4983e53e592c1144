"""``/v1/authors``: create, read and list authors."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from gatehouse.authors.adapters.http.dependencies import (
    AuthorCreator,
    AuthorReader,
    UnitOfWorkDep,
)
from gatehouse.authors.adapters.http.schemas import AuthorCreate, AuthorOut, AuthorPage
from gatehouse.authors.domain.commands import CreateAuthor
from gatehouse.authors.service_layer import handlers
from gatehouse.authors.service_layer.pagination import MAX_PER_PAGE

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
router = APIRouter(
    prefix="/v1/authors",
    tags=["authors"],
    responses={
        401: {"description": "No or invalid bearer token", **PROBLEM},
        403: {"description": "The token lacks the role", **PROBLEM},
    },
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The name is taken", **PROBLEM}},
)
async def create_author(
    body: AuthorCreate, uow: UnitOfWorkDep, _: AuthorCreator, request: Request, response: Response
) -> AuthorOut:
    """Create an author (role `create-author`).

    Names are unique: a second author with the same name is a 409. The answer's
    `Location` header is the new author's URL; a `gatehouse.author.created` event
    follows on the event bus.
    """
    author = await handlers.create_author(CreateAuthor(body.name, body.bio), uow)
    response.headers["Location"] = f"{request.scope.get('root_path', '')}/v1/authors/{author.id}"
    return AuthorOut.of(author)


@router.get("/{author_id}", responses={404: {"description": "No such author", **PROBLEM}})
async def get_author(author_id: UUID, uow: UnitOfWorkDep, _: AuthorReader) -> AuthorOut:
    """One author by id (role `get-authors`)."""
    return AuthorOut.of(await handlers.get_author(author_id, uow))


@router.get("")
async def list_authors(
    uow: UnitOfWorkDep,
    _: AuthorReader,
    page: Annotated[int, Query(ge=1, description="1-based page number (offset paging).")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`meta.next_cursor` of the previous page.")
    ] = None,
    name: Annotated[str | None, Query(max_length=200, description="Exact name.")] = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Case-insensitive text in name or bio.")
    ] = None,
) -> AuthorPage:
    """Authors oldest first, ordered by `(created_at, id)` (role `get-authors`).

    Page with `page`/`per_page`, or follow `meta.next_cursor` with `cursor`
    (keyset paging: stable while authors are added; `page` is then ignored).
    """
    query = handlers.ListAuthors(page, per_page, name, search, cursor)
    return AuthorPage.of(await handlers.list_authors(query, uow))
