"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from gatehouse.authors.domain.model import BIO_MAX, NAME_MAX, Author
from gatehouse.authors.service_layer.pagination import Page

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]


class AuthorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Unique name of the author.", examples=["Ursula K. Le Guin"])
    bio: str = Field("", max_length=BIO_MAX, description="Free-text biography.")


class AuthorOut(BaseModel):
    id: UUID
    name: str
    bio: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, author: Author) -> AuthorOut:
        return cls(
            id=author.id,
            name=author.name,
            bio=author.bio,
            created_at=author.created_at,
            updated_at=author.updated_at,
            version=author.version,
        )


class PageMeta(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int
    next_cursor: str | None = Field(description="Pass as `cursor` to read the next page.")
    has_more: bool


class AuthorPage(BaseModel):
    data: list[AuthorOut]
    meta: PageMeta

    @classmethod
    def of(cls, page: Page[Author]) -> AuthorPage:
        meta = PageMeta(
            page=page.page,
            per_page=page.per_page,
            total=page.total,
            pages=page.pages,
            next_cursor=page.next_cursor,
            has_more=page.has_more,
        )
        return cls(data=[AuthorOut.of(a) for a in page.items], meta=meta)
