"""The aggregates: events with the resource, versions, what an update changes."""

from datetime import UTC, datetime

import pytest

from gatehouse.authors.domain.errors import InvalidBook, InvalidText, StaleVersion
from gatehouse.authors.domain.events import AuthorCreated, AuthorDeleted, AuthorUpdated, BookUpdated
from gatehouse.authors.domain.model import Author, Book

NOW = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
LATER = datetime(2025, 1, 3, tzinfo=UTC)


def test_a_new_author_raises_author_created_with_the_resource() -> None:
    author = Author.create("  Ursula K. Le Guin ", "Earthsea", now=NOW)

    assert author.name == "Ursula K. Le Guin"
    assert author.events == [AuthorCreated(author.snapshot())]
    assert author.snapshot() == {
        "id": str(author.id),
        "name": "Ursula K. Le Guin",
        "bio": "Earthsea",
        "created_at": "2025-01-02T03:04:05.123456Z",
        "updated_at": "2025-01-02T03:04:05.123456Z",
        "version": 1,
    }


def test_an_update_bumps_the_version_and_records_before_and_after() -> None:
    author = Author.create("Le Guin", "", now=NOW)
    author.events.clear()

    author.update(bio="Earthsea", name="Le Guin", now=LATER)

    assert author.version == 2
    assert author.updated_at == LATER
    assert author.events == [
        AuthorUpdated(author.snapshot(), {"bio": {"before": "", "after": "Earthsea"}})
    ]


def test_an_update_that_changes_nothing_keeps_the_version_and_raises_nothing() -> None:
    author = Author.create("Le Guin", "x", now=NOW)
    author.events.clear()

    author.update(name="Le Guin", bio="x")

    assert (author.version, author.updated_at, author.events) == (1, NOW, [])


def test_renaming_recomputes_the_comparison_key() -> None:
    author = Author.create("Le Guin")
    author.update(name="Octavia  BUTLER")
    assert author.name_key == "octavia butler"


def test_a_stale_version_is_refused() -> None:
    author = Author.create("Le Guin")
    author.update(bio="b")

    author.check_version(2)
    author.check_version(None)
    with pytest.raises(StaleVersion) as caught:
        author.check_version(1)
    assert caught.value.status == 412
    assert caught.value.extra["current_version"] == 2


def test_deleting_raises_author_deleted_with_the_last_state() -> None:
    author = Author.create("Le Guin")
    author.events.clear()
    author.delete()
    assert author.events == [AuthorDeleted(author.snapshot())]


@pytest.mark.parametrize("name", ["", "   ", "\u200b", "x" * 201, "a\x00b", "a\nb"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidText) as caught:
        Author.create(name)
    assert caught.value.extra["field"] == "name"


def test_a_book_has_a_checked_isbn_and_year() -> None:
    book = Book.create(Author.create("A").id, " The Dispossessed ", 1974, "0-06-051275-X")

    assert book.title == "The Dispossessed"
    assert book.isbn == "9780060512750"
    with pytest.raises(InvalidBook):
        Book.create(book.author_id, "T", 10_000)
    with pytest.raises(InvalidBook):
        Book.create(book.author_id, "T", 2000, "978-0-06-051275-1")


def test_moving_a_book_is_an_update_of_author_id() -> None:
    before = Author.create("A").id
    book = Book.create(before, "T", 2000)
    book.events.clear()
    after = Author.create("B").id

    book.update(author_id=after)

    assert book.events == [
        BookUpdated(book.snapshot(), {"author_id": {"before": str(before), "after": str(after)}})
    ]
