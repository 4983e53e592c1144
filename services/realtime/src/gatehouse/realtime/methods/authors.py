"""``authors.*`` and ``books.*``: the authors service's commands and queries over RPC.

Realtime checks the params' shape and the caller's roles before asking (no round
trip for a call that cannot succeed); the authors service checks both again, runs
the command through its message bus with the caller's context (audit, idempotency)
and answers. Sizes and text rules are the authors service's: its 422 comes back
as ``validation_failed``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from gatehouse.common.identity import CREATE_AUTHOR, DELETE_AUTHOR, GET_AUTHORS, UPDATE_AUTHOR
from gatehouse.realtime.registry import METHODS, Call

SERVICE = "authors"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ById(_Params):
    id: UUID


class Guarded(ById):
    version: int | None = Field(None, ge=1, description="Refuse unless this is the version")


class _Page(_Params):
    page: int | None = Field(None, ge=1, description="Offset paging: the page number")
    per_page: int | None = Field(None, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512, description="Keyset paging: next_cursor")
    sort: str | None = Field(None, max_length=100)
    search: str | None = Field(None, max_length=200)


class AuthorList(_Page):
    name: str | None = Field(None, max_length=400)


class BookList(_Page):
    author_id: UUID | None = None


class AuthorIn(_Params):
    name: str
    bio: str | None = None


class AuthorChanges(_Params):
    name: str | None = None
    bio: str | None = None


class AuthorChange(Guarded):
    changes: AuthorChanges = Field(description="JSON Merge Patch of the author")


class BookIn(_Params):
    author_id: UUID
    title: str
    year: int = Field(strict=True)
    isbn: str | None = None


class BookChanges(_Params):
    author_id: UUID | None = None
    title: str | None = None
    year: int | None = Field(None, strict=True)
    isbn: str | None = None


class BookChange(Guarded):
    changes: BookChanges = Field(description="JSON Merge Patch of the book")


_TABLE: tuple[tuple[str, set[str], type[BaseModel], str], ...] = (
    ("authors.list", {GET_AUTHORS}, AuthorList, "Authors, a page of them"),
    ("authors.get", {GET_AUTHORS}, ById, "One author"),
    ("authors.create", {CREATE_AUTHOR}, AuthorIn, "Create an author"),
    ("authors.update", {UPDATE_AUTHOR}, AuthorChange, "Change an author"),
    ("authors.delete", {DELETE_AUTHOR}, Guarded, "Delete an author"),
    ("books.list", {GET_AUTHORS}, BookList, "Books, a page of them"),
    ("books.get", {GET_AUTHORS}, ById, "One book"),
    ("books.create", {CREATE_AUTHOR}, BookIn, "Create a book"),
    ("books.update", {UPDATE_AUTHOR}, BookChange, "Change a book"),
    ("books.delete", {DELETE_AUTHOR}, Guarded, "Delete a book"),
)


def _forward(name: str) -> Any:
    async def forward(call: Call, params: BaseModel) -> Any:
        return await call.ask(SERVICE, name, params)

    return forward


for _name, _roles, _params, _summary in _TABLE:
    METHODS.method(_name, roles=_roles, params=_params, summary=_summary)(_forward(_name))
