"""``/v1/books`` and ``/v1/authors/{id}/books``: the books of the authors."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response

from gatehouse.authors.domain import commands
from gatehouse.authors.domain.model import YEAR_MAX, YEAR_MIN
from gatehouse.authors.domain.text import FILTER
from gatehouse.authors.entrypoints.http import params, responses
from gatehouse.authors.entrypoints.http.dependencies import (
    IdempotencyKey,
    IfMatch,
    IfNoneMatch,
    ServicesDep,
    caller,
    if_match,
    reject_unknown_query,
    with_key,
)
from gatehouse.authors.entrypoints.http.problems import problems
from gatehouse.authors.entrypoints.http.v1.authors import (
    MERGE_PATCH,
    READS,
    WRITES,
    merge_patch_body,
)
from gatehouse.authors.entrypoints.schemas import (
    AuthorBookIn,
    BookIn,
    BookOut,
    BookPage,
    BookPatch,
)
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.pagination import BOOK_SORTS, sort_pattern

COLLECTION = "/v1/books"
router = APIRouter(tags=["books"], dependencies=[Depends(reject_unknown_query)])

Creator = Annotated[RequestContext, Depends(caller(commands.CreateBook))]
Reader = Annotated[RequestContext, Depends(caller(messages.GetBook))]
Lister = Annotated[RequestContext, Depends(caller(messages.ListBooks))]
Replacer = Annotated[RequestContext, Depends(caller(commands.ReplaceBook))]
Patcher = Annotated[RequestContext, Depends(caller(commands.PatchBook))]
Deleter = Annotated[RequestContext, Depends(caller(commands.DeleteBook))]
BookSort = Annotated[
    str | None,
    Query(
        pattern=sort_pattern(BOOK_SORTS),
        description="Comma-separated fields of `title`, `year`, `created_at`, `updated_at`; "
        "`-` for descending. Default `created_at`; the id breaks ties.",
        examples=["-year,title"],
    ),
]
YearFrom = Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX, description="Inclusive.")]
YearTo = Annotated[int | None, Query(ge=YEAR_MIN, le=YEAR_MAX, description="Inclusive.")]
Isbn = Annotated[str | None, Query(max_length=32, description="ISBN-10 or -13.")]
TitleSearch = Annotated[
    str | None, Query(max_length=100, pattern=FILTER, description="Text in the title.")
]


@router.post(
    COLLECTION,
    status_code=201,
    summary="Create a book",
    response_model=BookOut,
    responses=problems(*WRITES, 404, 409, s404="No such author", s409="The ISBN is taken"),
    openapi_extra={"x-roles": ["create-author"]},
)
async def create_book(
    body: BookIn,
    request: Request,
    services: ServicesDep,
    context: Creator,
    key: IdempotencyKey = None,
) -> Response:
    """Role `create-author`. A `gatehouse.book.created` event follows."""
    command = commands.CreateBook(body.author_id, body.title, body.year, body.isbn)
    outcome = await services.messagebus.handle(command, with_key(context, key))
    return responses.written(outcome, request, COLLECTION, 201)


@router.post(
    "/v1/authors/{author_id}/books",
    status_code=201,
    summary="Create a book of an author",
    response_model=BookOut,
    responses=problems(*WRITES, 404, 409, s404="No such author", s409="The ISBN is taken"),
    openapi_extra={"x-roles": ["create-author"]},
)
async def create_author_book(
    author_id: UUID,
    body: AuthorBookIn,
    request: Request,
    services: ServicesDep,
    context: Creator,
    key: IdempotencyKey = None,
) -> Response:
    """Role `create-author`. The book belongs to the author of the path."""
    command = commands.CreateBook(author_id, body.title, body.year, body.isbn)
    outcome = await services.messagebus.handle(command, with_key(context, key))
    return responses.written(outcome, request, COLLECTION, 201)


@router.get(
    COLLECTION + "/{book_id}",
    summary="Read a book",
    response_model=BookOut,
    responses={304: {"description": "Not modified (`If-None-Match`)"}, **problems(*READS, 404)},
    openapi_extra={"x-roles": ["get-authors"]},
)
async def get_book(
    book_id: UUID, services: ServicesDep, context: Reader, inm: IfNoneMatch = None
) -> Response:
    """Role `get-authors`."""
    found = await services.messagebus.handle(messages.GetBook(book_id), context)
    return responses.read(found, inm)


async def _list(
    services: ServicesDep, context: RequestContext, query: messages.ListBooks
) -> Response:
    found = await services.messagebus.handle(query, context)
    return responses.listing(found.items, found.meta())


@router.get(
    COLLECTION,
    summary="List books",
    response_model=BookPage,
    responses=problems(*READS, 404, s404="No such author (`author_id`)"),
    openapi_extra={"x-roles": ["get-authors"]},
)
async def list_books(
    services: ServicesDep,
    context: Lister,
    page: params.Page = None,
    per_page: params.PerPage = 20,
    cursor: params.Cursor = None,
    sort: BookSort = None,
    ids: params.Ids = None,
    author_id: Annotated[UUID | None, Query(description="Books of this author.")] = None,
    title: Annotated[
        str | None, Query(max_length=300, pattern=FILTER, description="Exact title (normalised).")
    ] = None,
    search: TitleSearch = None,
    isbn: Isbn = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    created_after: params.Since = None,
    created_before: params.Until = None,
    updated_after: params.Since = None,
    updated_before: params.Until = None,
) -> Response:
    """Role `get-authors`. Filters combine with AND; paging as for authors."""
    query = messages.ListBooks(
        messages.Window(per_page, page, cursor, sort),
        tuple(ids or ()),
        author_id,
        title,
        search,
        isbn,
        year_from,
        year_to,
        created_after,
        created_before,
        updated_after,
        updated_before,
    )
    return await _list(services, context, query)


@router.get(
    "/v1/authors/{author_id}/books",
    summary="List the books of an author",
    response_model=BookPage,
    responses=problems(*READS, 404, s404="No such author"),
    openapi_extra={"x-roles": ["get-authors"]},
)
async def list_author_books(
    author_id: UUID,
    services: ServicesDep,
    context: Lister,
    page: params.Page = None,
    per_page: params.PerPage = 20,
    cursor: params.Cursor = None,
    sort: BookSort = None,
    search: TitleSearch = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
) -> Response:
    """Role `get-authors`. A 404 when the author does not exist."""
    window = messages.Window(per_page, page, cursor, sort)
    query = messages.ListBooks(
        window, author_id=author_id, search=search, year_from=year_from, year_to=year_to
    )
    return await _list(services, context, query)


@router.put(
    COLLECTION + "/{book_id}",
    summary="Replace a book",
    response_model=BookOut,
    responses=problems(*WRITES, 404, 409, 412),
    openapi_extra={"x-roles": ["update-author"]},
)
async def replace_book(
    book_id: UUID,
    body: BookIn,
    request: Request,
    services: ServicesDep,
    context: Replacer,
    match: IfMatch = None,
) -> Response:
    """Role `update-author`. Moving a book to another author is a change of `author_id`."""
    version = if_match(match, services.settings.require_if_match)
    command = commands.ReplaceBook(
        book_id, body.author_id, body.title, body.year, body.isbn, version
    )
    outcome = await services.messagebus.handle(command, context)
    return responses.written(outcome, request, COLLECTION)


@router.patch(
    COLLECTION + "/{book_id}",
    summary="Change some fields of a book",
    response_model=BookOut,
    responses=problems(*WRITES, 404, 409, 412),
    openapi_extra={
        "x-roles": ["update-author"],
        "requestBody": merge_patch_body("BookPatch"),
    },
)
async def patch_book(
    book_id: UUID,
    body: Annotated[BookPatch, Body(media_type=MERGE_PATCH)],
    request: Request,
    services: ServicesDep,
    context: Patcher,
    match: IfMatch = None,
    key: IdempotencyKey = None,
) -> Response:
    """Role `update-author`. JSON Merge Patch; `"isbn": null` removes the ISBN."""
    version = if_match(match, services.settings.require_if_match)
    command = commands.PatchBook(book_id, body.changes(), version)
    outcome = await services.messagebus.handle(command, with_key(context, key))
    return responses.written(outcome, request, COLLECTION)


@router.delete(
    COLLECTION + "/{book_id}",
    status_code=204,
    summary="Delete a book",
    responses=problems(400, 401, 403, 404, 412, 428, 429, 503),
    openapi_extra={"x-roles": ["delete-author"]},
)
async def delete_book(
    book_id: UUID,
    request: Request,
    services: ServicesDep,
    context: Deleter,
    match: IfMatch = None,
) -> Response:
    """Role `delete-author`. A `gatehouse.book.deleted` event carries its last state."""
    version = if_match(match, services.settings.require_if_match)
    outcome = await services.messagebus.handle(commands.DeleteBook(book_id, version), context)
    return responses.written(outcome, request, COLLECTION)
