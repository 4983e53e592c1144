"""``/v1/authors``: create, read, list, replace, patch and delete authors."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.responses import Response

from gatehouse.authors.domain import commands
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
from gatehouse.authors.entrypoints.schemas import AuthorIn, AuthorOut, AuthorPage, AuthorPatch
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.pagination import AUTHOR_SORTS, sort_pattern

COLLECTION = "/v1/authors"
READS = (400, 401, 403, 429, 503)
WRITES = (400, 401, 403, 415, 422, 428, 429, 503)
MERGE_PATCH = "application/merge-patch+json"


def merge_patch_body(schema: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a PATCH: JSON Merge Patch, ``application/json`` too."""
    ref = {"schema": {"$ref": f"#/components/schemas/{schema}"}}
    return {"content": {MERGE_PATCH: ref, "application/json": ref}}


router = APIRouter(
    prefix=COLLECTION, tags=["authors"], dependencies=[Depends(reject_unknown_query)]
)

Creator = Annotated[RequestContext, Depends(caller(commands.CreateAuthor))]
Reader = Annotated[RequestContext, Depends(caller(messages.GetAuthor))]
Lister = Annotated[RequestContext, Depends(caller(messages.ListAuthors))]
Replacer = Annotated[RequestContext, Depends(caller(commands.ReplaceAuthor))]
Patcher = Annotated[RequestContext, Depends(caller(commands.PatchAuthor))]
Deleter = Annotated[RequestContext, Depends(caller(commands.DeleteAuthor))]
AuthorSort = Annotated[
    str | None,
    Query(
        pattern=sort_pattern(AUTHOR_SORTS),
        description="Comma-separated fields of `name`, `created_at`, `updated_at`; `-` for "
        "descending. Default `created_at` (oldest first); the id breaks ties.",
        examples=["name,-created_at"],
    ),
]


@router.post(
    "",
    status_code=201,
    summary="Create an author",
    response_model=AuthorOut,
    responses=problems(*WRITES, 409, s409="The name is taken (compared case-insensitively)"),
    openapi_extra={"x-roles": ["create-author"]},
)
async def create_author(
    body: AuthorIn,
    request: Request,
    services: ServicesDep,
    context: Creator,
    key: IdempotencyKey = None,
) -> Response:
    """Role `create-author`.

    Names are unique once normalised (NFC, case-folded, invisible characters and
    runs of spaces folded): "Octavia Butler" and "octavia butler\\u200b" clash (409).
    The bio is Markdown; HTML in it is sanitised. The answer carries `Location`
    and `ETag`; a `gatehouse.author.created` event follows.
    """
    command = commands.CreateAuthor(body.name, body.bio)
    outcome = await services.messagebus.handle(command, with_key(context, key))
    return responses.written(outcome, request, COLLECTION, 201)


@router.get(
    "/{author_id}",
    summary="Read an author",
    response_model=AuthorOut,
    responses={304: {"description": "Not modified (`If-None-Match`)"}, **problems(*READS, 404)},
    openapi_extra={"x-roles": ["get-authors"]},
)
async def get_author(
    author_id: UUID, services: ServicesDep, context: Reader, inm: IfNoneMatch = None
) -> Response:
    """Role `get-authors`. The `ETag` is the author's version; send it back as
    `If-None-Match` for a 304, or as `If-Match` on a write."""
    found = await services.messagebus.handle(messages.GetAuthor(author_id), context)
    return responses.read(found, inm)


@router.get(
    "",
    summary="List authors",
    response_model=AuthorPage,
    responses=problems(*READS),
    openapi_extra={"x-roles": ["get-authors"]},
)
async def list_authors(
    services: ServicesDep,
    context: Lister,
    page: params.Page = None,
    per_page: params.PerPage = 20,
    cursor: params.Cursor = None,
    sort: AuthorSort = None,
    ids: params.Ids = None,
    name: Annotated[
        str | None, Query(max_length=200, pattern=FILTER, description="Exact name (normalised).")
    ] = None,
    search: Annotated[
        str | None,
        Query(max_length=100, pattern=FILTER, description="Text in the name (case-insensitive)."),
    ] = None,
    created_after: params.Since = None,
    created_before: params.Until = None,
    updated_after: params.Since = None,
    updated_before: params.Until = None,
) -> Response:
    """Role `get-authors`. Filters combine with AND. Page with `page`/`per_page`
    (offset) or follow `meta.next_cursor` with `cursor` (keyset: no row skipped or
    repeated while authors are added)."""
    query = messages.ListAuthors(
        messages.Window(per_page, page, cursor, sort),
        tuple(ids or ()),
        name,
        search,
        created_after,
        created_before,
        updated_after,
        updated_before,
    )
    found = await services.messagebus.handle(query, context)
    return responses.listing(found.items, found.meta())


@router.put(
    "/{author_id}",
    summary="Replace an author",
    response_model=AuthorOut,
    responses=problems(*WRITES, 404, 409, 412),
    openapi_extra={"x-roles": ["update-author"]},
)
async def replace_author(
    author_id: UUID,
    body: AuthorIn,
    request: Request,
    services: ServicesDep,
    context: Replacer,
    match: IfMatch = None,
) -> Response:
    """Role `update-author`. With `If-Match`, a 412 if the author changed since
    that version. A replacement that changes nothing keeps the version."""
    version = if_match(match, services.settings.require_if_match)
    command = commands.ReplaceAuthor(author_id, body.name, body.bio, version)
    outcome = await services.messagebus.handle(command, context)
    return responses.written(outcome, request, COLLECTION)


@router.patch(
    "/{author_id}",
    summary="Change some fields of an author",
    response_model=AuthorOut,
    responses=problems(*WRITES, 404, 409, 412),
    openapi_extra={
        "x-roles": ["update-author"],
        "requestBody": merge_patch_body("AuthorPatch"),
    },
)
async def patch_author(
    author_id: UUID,
    body: Annotated[AuthorPatch, Body(media_type=MERGE_PATCH)],
    request: Request,
    services: ServicesDep,
    context: Patcher,
    match: IfMatch = None,
    key: IdempotencyKey = None,
) -> Response:
    """Role `update-author`. A JSON Merge Patch (RFC 7396; `application/json` is
    accepted too): members given change, `"bio": null` empties the bio. With
    `If-Match`, a 412 if the author changed since that version."""
    version = if_match(match, services.settings.require_if_match)
    command = commands.PatchAuthor(author_id, body.changes(), version)
    outcome = await services.messagebus.handle(command, with_key(context, key))
    return responses.written(outcome, request, COLLECTION)


@router.delete(
    "/{author_id}",
    status_code=204,
    summary="Delete an author",
    responses=problems(400, 401, 403, 404, 409, 412, 428, 429, 503, s409="The author has books"),
    openapi_extra={"x-roles": ["delete-author"]},
)
async def delete_author(
    author_id: UUID,
    request: Request,
    services: ServicesDep,
    context: Deleter,
    match: IfMatch = None,
) -> Response:
    """Role `delete-author`. Refused with 409 `author_has_books` while the author
    has books: delete (or move) them first; nothing is deleted silently. A
    `gatehouse.author.deleted` event carries the author's last state."""
    version = if_match(match, services.settings.require_if_match)
    outcome = await services.messagebus.handle(commands.DeleteAuthor(author_id, version), context)
    return responses.written(outcome, request, COLLECTION)
