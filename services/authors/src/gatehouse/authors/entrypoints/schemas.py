"""Bodies of the API, shared by HTTP (v1, v2) and the AMQP RPC server.

Pydantic bounds sizes and types (so nothing unbounded reaches the database); the
domain then checks the text itself (controls, NFC, ISBN check digit) and answers
422 with the field it refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gatehouse.authors.domain.model import BIO_MAX, NAME_MAX, TITLE_MAX, YEAR_MAX, YEAR_MIN
from gatehouse.authors.domain.text import MULTI_LINE, SINGLE_LINE

AUTHOR_ID = "5f0c2a4e-8d1b-4c7e-9a3f-2b6d8e1f0a97"
BOOK_ID = "0b9e7c1d-3f2a-4e5b-8c6d-7a1f9e2d3c4b"
STAMP = "2026-11-26T09:30:00.123456Z"
AUTHOR_EXAMPLE: dict[str, Any] = {
    "id": AUTHOR_ID,
    "name": "Ursula K. Le Guin",
    "bio": "Author of *The Dispossessed*.",
    "created_at": STAMP,
    "updated_at": STAMP,
    "version": 1,
}
BOOK_EXAMPLE: dict[str, Any] = {
    "id": BOOK_ID,
    "author_id": AUTHOR_ID,
    "title": "The Dispossessed",
    "year": 1974,
    "isbn": "9780060512750",
    "created_at": STAMP,
    "updated_at": STAMP,
    "version": 1,
}

# What the domain accepts, said in JSON Schema: no control characters, something
# other than blanks in a name or title, lengths as sent. The domain checks it again.
# Documented, not enforced by pydantic: the domain refuses with a message naming the
# character and its position (422 invalid_text), which a regex error cannot.
ONE_LINE: dict[str, Any] = {"pattern": SINGLE_LINE}
LINES: dict[str, Any] = {"pattern": MULTI_LINE}
NAME_DOC = "Unique once normalised (NFC, case-insensitive, invisible characters folded)."
BIO_DOC = "Markdown; HTML in it is sanitised (scripts, event handlers, `javascript:` go)."
ISBN_PATTERN = r"^(97[89]([- ]?[0-9]){10}|[0-9]([- ]?[0-9]){8}[- ]?[0-9Xx])$"
ISBN_DOC = "ISBN-10 or ISBN-13 with a valid check digit, hyphens allowed; stored as 13 digits."
Year = Field(ge=YEAR_MIN, le=YEAR_MAX, description="Year of first publication.")


def _not_bool(value: object) -> object:
    if isinstance(value, bool):  # pydantic would read true as 1
        raise ValueError("must be a whole number, not a boolean")
    return value


WholeNumber = Annotated[int, BeforeValidator(_not_bool)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthorIn(_Body):
    """An author as created (POST) or replaced (PUT)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Ursula K. Le Guin", "bio": "Wrote *Earthsea*."}]},
    )

    name: str = Field(max_length=NAME_MAX, json_schema_extra=ONE_LINE, description=NAME_DOC)
    bio: str = Field("", max_length=BIO_MAX, json_schema_extra=LINES, description=BIO_DOC)


class AuthorPatch(_Body):
    """JSON Merge Patch (RFC 7396) of an author: only the members given change;
    ``"bio": null`` empties the bio (a name cannot be removed)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"bio": "Updated."}]})

    name: str = Field(None, max_length=NAME_MAX, json_schema_extra=ONE_LINE, description=NAME_DOC)  # type: ignore[assignment]
    bio: str | None = Field(None, max_length=BIO_MAX, json_schema_extra=LINES, description=BIO_DOC)

    def changes(self) -> dict[str, Any]:
        fields = self.model_dump(include=self.model_fields_set)
        if "bio" in fields and fields["bio"] is None:
            fields["bio"] = ""
        return fields


class AuthorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [AUTHOR_EXAMPLE]})

    id: UUID
    name: str
    bio: str
    created_at: datetime
    updated_at: datetime
    version: int = Field(description="Grows with every change; the `ETag` is its quoted form.")


class BookFields(_Body):
    title: str = Field(max_length=TITLE_MAX, json_schema_extra=ONE_LINE)
    year: WholeNumber = Year
    isbn: str | None = Field(None, pattern=ISBN_PATTERN, description=ISBN_DOC)


class AuthorBookIn(BookFields):
    """A book created under `/v1/authors/{id}/books` (the author is the one of the path)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"title": "The Left Hand of Darkness", "year": 1969}]},
    )


class BookIn(BookFields):
    """A book as created at `/v1/books` (POST) or replaced (PUT)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "author_id": AUTHOR_ID,
                    "title": "The Dispossessed",
                    "year": 1974,
                    "isbn": "978-0-06-051275-0",
                }
            ]
        },
    )

    author_id: UUID


class BookPatch(_Body):
    """JSON Merge Patch of a book; ``"isbn": null`` removes the ISBN (the other members
    cannot be removed); a new ``author_id`` moves the book."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"year": 1975}]})

    author_id: UUID = None  # type: ignore[assignment]
    title: str = Field(None, max_length=TITLE_MAX, json_schema_extra=ONE_LINE)  # type: ignore[assignment]
    year: WholeNumber = Field(None, ge=YEAR_MIN, le=YEAR_MAX)  # type: ignore[assignment]
    isbn: str | None = Field(None, pattern=ISBN_PATTERN, description=ISBN_DOC)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)


class BookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [BOOK_EXAMPLE]})

    id: UUID
    author_id: UUID
    title: str
    year: int
    isbn: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class PageMeta(BaseModel):
    page: int | None = Field(description="The page number (offset paging); null with `cursor`.")
    per_page: int
    total: int = Field(description="Rows matching the filters.")
    pages: int
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page.")
    has_more: bool


META_EXAMPLE: dict[str, Any] = {
    "page": 1,
    "per_page": 20,
    "total": 1,
    "pages": 1,
    "next_cursor": None,
    "has_more": False,
}


class AuthorPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [AUTHOR_EXAMPLE], "meta": META_EXAMPLE}]}
    )

    data: list[AuthorOut]
    meta: PageMeta


class BookPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"data": [BOOK_EXAMPLE], "meta": META_EXAMPLE}]}
    )

    data: list[BookOut]
    meta: PageMeta


class Actor(BaseModel):
    subject: str | None
    username: str | None
    roles: list[str]


class EventRef(BaseModel):
    id: str
    type: str


class RefusalOut(BaseModel):
    status: int = Field(description="The status the write was answered with.")
    code: str = Field(description="The problem `code` of that answer.")
    fields: list[str] = Field(description="The fields the request tried to set (names only).")


AUDIT_EXAMPLES: Any = [  # pydantic types json_schema_extra as JsonValue
    {
        "id": "42",
        "occurred_at": STAMP,
        "action": "updated",
        "entity_type": "author",
        "entity_id": AUTHOR_ID,
        "actor": {"subject": "f3a1...", "username": "editor", "roles": ["editor"]},
        "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "client_ip": "203.0.113.7",
        "user_agent": "curl/8.5.0",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "outcome": "succeeded",
        "refusal": None,
        "event": {"id": "7d3c...", "type": "gatehouse.author.updated"},
        "changes": {"bio": {"before": "", "after": "Wrote *Earthsea*."}},
    },
    {
        "id": "43",
        "occurred_at": STAMP,
        "action": "deleted",
        "entity_type": "author",
        "entity_id": AUTHOR_ID,
        "actor": {"subject": "9c2e...", "username": "viewer", "roles": ["viewer"]},
        "request_id": "0af7651916cd43dd8448eb211c80319c",
        "client_ip": "203.0.113.8",
        "user_agent": "curl/8.5.0",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "outcome": "refused",
        "refusal": {"status": 403, "code": "forbidden", "fields": []},
        "event": None,
        "changes": {},
    },
]


class AuditRecordOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": AUDIT_EXAMPLES})

    id: str
    occurred_at: datetime
    action: str = Field(description="`created`, `updated` or `deleted`.")
    entity_type: str = Field(description="`author` or `book`.")
    entity_id: str | None = Field(description="None only for a refused create.")
    actor: Actor
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    traceparent: str | None
    outcome: str = Field(description="`succeeded` or `refused`.")
    refusal: RefusalOut | None = Field(description="Why the write was refused (`refused` only).")
    event: EventRef | None = Field(description="The event of the change (`succeeded` only).")
    changes: dict[str, dict[str, Any]] = Field(
        description="Per changed field, its value `before` and `after` (empty when refused)."
    )


class AuditMeta(BaseModel):
    limit: int
    next_cursor: str | None
    has_more: bool


class AuditPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": AUDIT_EXAMPLES,
                    "meta": {"limit": 50, "next_cursor": None, "has_more": False},
                }
            ]
        }
    )

    data: list[AuditRecordOut]
    meta: AuditMeta
