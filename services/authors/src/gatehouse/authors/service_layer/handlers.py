"""Command handlers: authors and books. They change aggregates through the unit of work;
the message bus commits (and records idempotent results) around them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from gatehouse.authors.adapters.markdown import sanitise
from gatehouse.authors.domain import commands
from gatehouse.authors.domain.errors import AuthorHasBooks, AuthorNotFound, BookNotFound
from gatehouse.authors.domain.model import BIO_MAX, Author, Book, valid_bio
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork

AUTHOR_FIELDS = frozenset({"name", "bio"})
BOOK_FIELDS = frozenset({"author_id", "title", "year", "isbn"})


async def create_author(command: commands.CreateAuthor, uow: AbstractUnitOfWork) -> Author:
    author = Author.create(command.name, clean_bio(command.bio))
    await uow.authors.add(author)
    return author


async def replace_author(command: commands.ReplaceAuthor, uow: AbstractUnitOfWork) -> Author:
    return await _update_author(
        uow, command.id, command.if_match, name=command.name, bio=command.bio
    )


async def patch_author(command: commands.PatchAuthor, uow: AbstractUnitOfWork) -> Author:
    fields = _known(command.changes, AUTHOR_FIELDS)
    return await _update_author(uow, command.id, command.if_match, **fields)


async def delete_author(command: commands.DeleteAuthor, uow: AbstractUnitOfWork) -> None:
    author = await _author(uow, command.id)
    author.check_version(command.if_match)
    books = await uow.books.count_by_author(author.id)
    if books:
        raise AuthorHasBooks(author.id, books)
    author.delete()
    await uow.authors.remove(author)


async def create_book(command: commands.CreateBook, uow: AbstractUnitOfWork) -> Book:
    await _author(uow, command.author_id)
    book = Book.create(command.author_id, command.title, command.year, command.isbn)
    await uow.books.add(book)
    return book


async def replace_book(command: commands.ReplaceBook, uow: AbstractUnitOfWork) -> Book:
    fields = asdict(command)
    for name in ("id", "if_match"):
        fields.pop(name)
    return await _update_book(uow, command.id, command.if_match, fields)


async def patch_book(command: commands.PatchBook, uow: AbstractUnitOfWork) -> Book:
    return await _update_book(
        uow, command.id, command.if_match, _known(command.changes, BOOK_FIELDS)
    )


async def delete_book(command: commands.DeleteBook, uow: AbstractUnitOfWork) -> None:
    book = await _book(uow, command.id)
    book.check_version(command.if_match)
    book.delete()
    await uow.books.remove(book)


def clean_bio(bio: str) -> str:
    """Checked text first (controls, NFC), then the HTML in the Markdown made safe."""
    return sanitise(valid_bio(bio, max_length=BIO_MAX))


async def _update_author(
    uow: AbstractUnitOfWork, author_id: UUID, if_match: int | None, **fields: Any
) -> Author:
    if "bio" in fields:
        fields["bio"] = clean_bio(fields["bio"])
    valid = Author.validated(**fields)  # a bad body is a 422 before a stale version's 412
    author = await _author(uow, author_id)
    author.check_version(if_match)
    author.update(**valid)
    await uow.authors.save(author)
    return author


async def _update_book(
    uow: AbstractUnitOfWork, book_id: UUID, if_match: int | None, fields: dict[str, Any]
) -> Book:
    valid = Book.validated(**fields)
    book = await _book(uow, book_id)
    book.check_version(if_match)
    if "author_id" in valid and valid["author_id"] != book.author_id:
        await _author(uow, valid["author_id"])
    book.update(**valid)
    await uow.books.save(book)
    return book


async def _author(uow: AbstractUnitOfWork, author_id: UUID) -> Author:
    author = await uow.authors.get(author_id)
    if author is None:
        raise AuthorNotFound(author_id)
    return author


async def _book(uow: AbstractUnitOfWork, book_id: UUID) -> Book:
    book = await uow.books.get(book_id)
    if book is None:
        raise BookNotFound(book_id)
    return book


def _known(changes: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"unknown field(s) {sorted(unknown)}")  # the entrypoints check first
    return dict(changes)
