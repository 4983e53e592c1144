"""``/v2/authors`` and ``/v2/books``: reads in the v2 representation."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from gatehouse.authors.adapters.markdown import render_html
from gatehouse.authors.entrypoints.http import params, responses
from gatehouse.authors.entrypoints.http.dependencies import (
    IfNoneMatch,
    ServicesDep,
    caller,
    reject_unknown_query,
)
from gatehouse.authors.entrypoints.http.problems import problems
from gatehouse.authors.entrypoints.schemas import AUTHOR_EXAMPLE, BOOK_EXAMPLE
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.pagination import AUTHOR_SORTS, sort_pattern

router = APIRouter(prefix="/v2", tags=["v2"], dependencies=[Depends(reject_unknown_query)])
Reader = Annotated[RequestContext, Depends(caller(messages.GetAuthor))]
Lister = Annotated[RequestContext, Depends(caller(messages.ListAuthors))]
BookReader = Annotated[RequestContext, Depends(caller(messages.GetBook))]
READS = problems(400, 401, 403, 404, 429, 503)


def author_v2(author: dict[str, Any]) -> dict[str, Any]:
    url = f"/v2/authors/{author['id']}"
    return {
        **author,
        "bio": {"markdown": author["bio"], "html": render_html(author["bio"])},
        "links": {"self": url, "books": f"/v1/authors/{author['id']}/books"},
    }


def book_v2(book: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in book.items() if k != "author_id"}
    author = book["author_id"]
    return {
        **shown,
        "author": {"id": author, "href": f"/v2/authors/{author}"},
        "links": {"self": f"/v2/books/{book['id']}"},
    }


class Bio(BaseModel):
    markdown: str
    html: str


class AuthorV2(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [author_v2(AUTHOR_EXAMPLE)]})

    id: UUID
    name: str
    bio: Bio
    created_at: str
    updated_at: str
    version: int
    links: dict[str, str]


class AuthorPageV2(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"data": [author_v2(AUTHOR_EXAMPLE)], "next_cursor": "MjAyNi0xMS0yNg"}]
        }
    )

    data: list[AuthorV2]
    next_cursor: str | None


class AuthorRef(BaseModel):
    id: UUID
    href: str


class BookV2(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [book_v2(BOOK_EXAMPLE)]})

    id: UUID
    title: str
    year: int
    isbn: str | None
    author: AuthorRef
    created_at: str
    updated_at: str
    version: int
    links: dict[str, str]


@router.get(
    "/authors/{author_id}",
    summary="Read an author (v2)",
    response_model=AuthorV2,
    responses={304: {"description": "Not modified"}, **READS},
    openapi_extra={"x-roles": ["get-authors"]},
)
async def get_author(
    author_id: UUID, services: ServicesDep, context: Reader, inm: IfNoneMatch = None
) -> Response:
    """Role `get-authors`. The bio as Markdown and as sanitised HTML; same `ETag` as v1."""
    found = await services.messagebus.handle(messages.GetAuthor(author_id), context)
    if responses.unchanged(found, inm):
        return responses.read(found, inm)
    return responses.resource(author_v2(found))


@router.get(
    "/authors",
    summary="List authors (v2: cursor paging)",
    response_model=AuthorPageV2,
    responses=problems(400, 401, 403, 429, 503),
    openapi_extra={"x-roles": ["get-authors"]},
)
async def list_authors(
    services: ServicesDep,
    context: Lister,
    per_page: params.PerPage = 20,
    cursor: params.Cursor = None,
    sort: Annotated[str | None, Query(pattern=sort_pattern(AUTHOR_SORTS))] = None,
) -> Response:
    """Role `get-authors`. Follow `next_cursor` until it is null."""
    query = messages.ListAuthors(messages.Window(per_page, None, cursor, sort))
    found = await services.messagebus.handle(query, context)
    return responses.json_body(
        {"data": [author_v2(a) for a in found.items], "next_cursor": found.next_cursor}
    )


@router.get(
    "/books/{book_id}",
    summary="Read a book (v2)",
    response_model=BookV2,
    responses={304: {"description": "Not modified"}, **READS},
    openapi_extra={"x-roles": ["get-authors"]},
)
async def get_book(
    book_id: UUID, services: ServicesDep, context: BookReader, inm: IfNoneMatch = None
) -> Response:
    """Role `get-authors`. The author as a link."""
    found = await services.messagebus.handle(messages.GetBook(book_id), context)
    if responses.unchanged(found, inm):
        return responses.read(found, inm)
    return responses.resource(book_v2(found))
