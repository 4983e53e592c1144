"""Commands: what a caller asks the service to change, named imperatively.

``if_match`` is the version the caller last saw (from ``If-Match``); ``None`` means
"whatever the current version is". A patch carries only the fields to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command."""


@dataclass(frozen=True, slots=True)
class CreateAuthor(Command):
    name: str
    bio: str = ""


@dataclass(frozen=True, slots=True)
class ReplaceAuthor(Command):
    id: UUID
    name: str
    bio: str = ""
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class PatchAuthor(Command):
    id: UUID
    changes: dict[str, Any] = field(default_factory=dict)
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteAuthor(Command):
    id: UUID
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class CreateBook(Command):
    author_id: UUID
    title: str
    year: int
    isbn: str | None = None


@dataclass(frozen=True, slots=True)
class ReplaceBook(Command):
    id: UUID
    author_id: UUID
    title: str
    year: int
    isbn: str | None = None
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class PatchBook(Command):
    id: UUID
    changes: dict[str, Any] = field(default_factory=dict)
    if_match: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteBook(Command):
    id: UUID
    if_match: int | None = None
