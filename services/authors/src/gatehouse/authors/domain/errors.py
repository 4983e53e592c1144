"""Domain errors, each a member of the one Gatehouse error hierarchy.

``gatehouse.common.errors`` is standard-library only, so subclassing it keeps the
domain framework-free while letting the single problem handler answer them.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from gatehouse.common.errors import Conflict, GatehouseError, NotFound, ValidationFailed


class InvalidText(ValidationFailed):
    """A text field with a character that could corrupt data, or of the wrong length."""

    code = "invalid_text"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field=field)


class InvalidBook(ValidationFailed):
    code = "invalid_book"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", field=field)


class DuplicateAuthorName(Conflict):
    """Another author already has this name (compared by its normalised key)."""

    code = "duplicate_author_name"

    def __init__(self, name: str) -> None:
        super().__init__(f"an author named {name!r} already exists", name=name)


class DuplicateIsbn(Conflict):
    code = "duplicate_isbn"

    def __init__(self, isbn: str) -> None:
        super().__init__(f"a book with ISBN {isbn} already exists", isbn=isbn)


class AuthorHasBooks(Conflict):
    """Deleting an author is refused while books refer to it (no silent cascade)."""

    code = "author_has_books"

    def __init__(self, author_id: UUID, books: int | None) -> None:
        count = "books" if books is None else f"{books} book(s)"
        super().__init__(
            f"author {author_id} still has {count}; delete them first",
            id=str(author_id),
            books=books,
        )


class AuthorNotFound(NotFound):
    code = "author_not_found"

    def __init__(self, author_id: UUID) -> None:
        super().__init__(f"author {author_id} does not exist", id=str(author_id))


class BookNotFound(NotFound):
    code = "book_not_found"

    def __init__(self, book_id: UUID) -> None:
        super().__init__(f"book {book_id} does not exist", id=str(book_id))


class StaleVersion(GatehouseError):
    """The caller's ``If-Match`` names a version that is no longer current (RFC 9110 §13.1.1)."""

    status: ClassVar[int] = 412
    code: ClassVar[str] = "precondition_failed"
    title: ClassVar[str] = "Precondition Failed"

    def __init__(self, expected: int, current: int | None) -> None:
        detail = f"the resource is at version {current}, not {expected}"
        if current is None:
            detail = f"the resource changed since version {expected}"
        super().__init__(detail, current_version=current)
