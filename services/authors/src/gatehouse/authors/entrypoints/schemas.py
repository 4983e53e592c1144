"""Bodies of the API, shared by HTTP (v1, v2) and the AMQP RPC server.

Pydantic bounds sizes and types (so nothing unbounded reaches the database); the
domain then checks the text itself (controls, NFC, ISBN check digit) and answers
422 with the field it refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from gatehouse.authors.domain.model import BIO_MAX, NAME_MAX, TITLE_MAX, YEAR_MAX, YEAR_MIN

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

# Generous wire limits: the domain counts characters after NFC and answers 422 itself.
Name = Field(min_length=1, max_length=NAME_MAX * 2, description="Unique (case-insensitively).")
Bio = Field(max_length=BIO_MAX * 2, description="Markdown; HTML in it is sanitised.")
Title = Field(min_length=1, max_length=TITLE_MAX * 2)
Year = Field(ge=YEAR_MIN, le=YEAR_MAX, description="Year of first publication.")
Isbn = Field(
    None, max_length=32, description="ISBN-10 or ISBN-13, hyphens allowed; stored as 13 digits."
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthorIn(_Body):
    """An author as created (POST) or replaced (PUT)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Ursula K. Le Guin", "bio": "Wrote *Earthsea*."}]},
    )

    name: str = Name
    bio: str = Field("", max_length=BIO_MAX * 2, description="Markdown; HTML in it is sanitised.")


class AuthorPatch(_Body):
    """JSON Merge Patch (RFC 7396) of an author: only the members given change;
    ``"bio": null`` empties the bio."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"bio": "Updated."}]})

    name: str | None = Field(None, min_length=1, max_length=NAME_MAX * 2)
    bio: str | None = Field(None, max_length=BIO_MAX * 2)

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
    title: str = Title
    year: int = Year
    isbn: str | None = Isbn


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
    """JSON Merge Patch of a book; ``"isbn": null`` removes the ISBN."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"year": 1975}]})

    author_id: UUID | None = None
    title: str | None = Field(None, min_length=1, max_length=TITLE_MAX * 2)
    year: int | None = Field(None, ge=YEAR_MIN, le=YEAR_MAX)
    isbn: str | None = Field(None, max_length=32)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set)

    def nulls(self) -> list[str]:
        """Members set to null that cannot be removed."""
        return [
            name
            for name in ("author_id", "title", "year")
            if name in self.model_fields_set and getattr(self, name) is None
        ]


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


class AuthorPage(BaseModel):
    data: list[AuthorOut]
    meta: PageMeta


class BookPage(BaseModel):
    data: list[BookOut]
    meta: PageMeta


class Actor(BaseModel):
    subject: str | None
    username: str | None
    roles: list[str]


class EventRef(BaseModel):
    id: str
    type: str


class AuditRecordOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
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
                    "event": {"id": "7d3c...", "type": "gatehouse.author.updated"},
                    "changes": {"bio": {"before": "", "after": "Wrote *Earthsea*."}},
                }
            ]
        }
    )

    id: str
    occurred_at: datetime
    action: str = Field(description="`created`, `updated` or `deleted`.")
    entity_type: str = Field(description="`author` or `book`.")
    entity_id: str
    actor: Actor
    request_id: str | None
    client_ip: str | None
    user_agent: str | None
    traceparent: str | None
    event: EventRef
    changes: dict[str, dict[str, Any]] = Field(
        description="Per changed field, its value `before` and `after`."
    )


class AuditMeta(BaseModel):
    limit: int
    next_cursor: str | None
    has_more: bool


class AuditPage(BaseModel):
    data: list[AuditRecordOut]
    meta: AuditMeta
