import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gatehouse.authors.adapters.memory import FakeUnitOfWork
from gatehouse.authors.domain.commands import CreateAuthor
from gatehouse.authors.domain.errors import AuthorNotFound, DuplicateAuthorName
from gatehouse.authors.domain.model import Author
from gatehouse.authors.service_layer import handlers
from gatehouse.authors.service_layer.handlers import ListAuthors
from gatehouse.common.errors import ValidationFailed


async def test_creating_an_author_commits_it_with_its_cloud_event() -> None:
    uow = FakeUnitOfWork()

    author = await handlers.create_author(CreateAuthor("Octavia Butler", "Kindred"), uow)

    assert await handlers.get_author(author.id, uow) == author
    [event] = uow.committed_events
    assert event.type == "gatehouse.author.created"
    assert event.source == "/gatehouse/authors"
    assert event.subject == str(author.id)
    assert event.data == {
        "id": str(author.id),
        "name": "Octavia Butler",
        "bio": "Kindred",
        "created_at": author.created_at.isoformat(),
        "updated_at": author.updated_at.isoformat(),
        "version": 1,
    }


async def test_a_duplicate_name_is_a_conflict_and_commits_nothing() -> None:
    uow = FakeUnitOfWork()
    await handlers.create_author(CreateAuthor("Octavia Butler"), uow)

    with pytest.raises(DuplicateAuthorName) as caught:
        await handlers.create_author(CreateAuthor("Octavia Butler"), uow)

    assert caught.value.status == 409
    assert uow.commits == 1
    assert len(uow.committed_events) == 1


async def test_an_unknown_author_is_not_found() -> None:
    with pytest.raises(AuthorNotFound) as caught:
        await handlers.get_author(uuid.uuid4(), FakeUnitOfWork())
    assert caught.value.status == 404


def _authors(count: int) -> list[Author]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        Author.create(f"Author {i:02d}", f"bio {i}", now=start + timedelta(seconds=i))
        for i in range(count)
    ]


async def test_pages_follow_creation_order_with_complete_meta() -> None:
    uow = FakeUnitOfWork(_authors(5))

    page = await handlers.list_authors(ListAuthors(page=2, per_page=2), uow)

    assert [a.name for a in page.items] == ["Author 02", "Author 03"]
    assert (page.total, page.pages, page.has_more) == (5, 3, True)


async def test_following_the_cursor_reads_every_author_once() -> None:
    uow = FakeUnitOfWork(_authors(5))
    names: list[str] = []
    cursor = None
    while True:
        page = await handlers.list_authors(ListAuthors(per_page=2, cursor=cursor), uow)
        names += [a.name for a in page.items]
        if not page.has_more:
            break
        cursor = page.next_cursor

    assert names == [f"Author {i:02d}" for i in range(5)]


async def test_name_and_search_filter_the_list() -> None:
    uow = FakeUnitOfWork(_authors(12))

    by_name = await handlers.list_authors(ListAuthors(name="Author 03"), uow)
    by_search = await handlers.list_authors(ListAuthors(search="BIO 1"), uow)

    assert [a.name for a in by_name.items] == ["Author 03"]
    assert [a.name for a in by_search.items] == ["Author 01", "Author 10", "Author 11"]


@pytest.mark.parametrize(
    "query",
    [ListAuthors(per_page=101), ListAuthors(page=0), ListAuthors(cursor="not-a-cursor")],
)
async def test_a_bad_window_is_a_422(query: ListAuthors) -> None:
    with pytest.raises(ValidationFailed):
        await handlers.list_authors(query, FakeUnitOfWork())
