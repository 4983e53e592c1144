"""The SQLAlchemy repository, unit of work and outbox on SQLite and on PostgreSQL."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters import orm
from gatehouse.authors.adapters.database import session_factory
from gatehouse.authors.adapters.repository import AuthorQuery
from gatehouse.authors.domain.commands import CreateAuthor
from gatehouse.authors.domain.errors import DuplicateAuthorName
from gatehouse.authors.domain.model import Author
from gatehouse.authors.service_layer import handlers
from gatehouse.authors.service_layer.unit_of_work import SqlAlchemyUnitOfWork


def _uow(engine: AsyncEngine) -> SqlAlchemyUnitOfWork:
    return SqlAlchemyUnitOfWork(session_factory(engine))


async def _outbox_rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(orm.outbox).order_by(orm.outbox.c.id))
        return [dict(row._mapping) for row in rows]


async def test_a_committed_author_reads_back_with_aware_timestamps(engine: AsyncEngine) -> None:
    created = await handlers.create_author(CreateAuthor("Ted Chiang", "Stories"), _uow(engine))

    found = await handlers.get_author(created.id, _uow(engine))

    assert (found.id, found.name, found.bio, found.version) == (
        created.id,
        "Ted Chiang",
        "Stories",
        1,
    )
    assert found.created_at == created.created_at
    assert found.created_at.tzinfo is not None


async def test_the_event_is_in_the_outbox_of_the_same_transaction(engine: AsyncEngine) -> None:
    author = await handlers.create_author(CreateAuthor("Ted Chiang"), _uow(engine))

    [row] = await _outbox_rows(engine)

    assert row["type"] == "gatehouse.author.created"
    assert row["sent_at"] is None
    assert row["sequence"] is None
    payload = row["payload"]
    assert isinstance(payload, dict)
    assert payload["id"] == row["event_id"]
    assert payload["subject"] == str(author.id)
    assert payload["data"]["name"] == "Ted Chiang"


async def test_without_commit_neither_author_nor_event_is_kept(engine: AsyncEngine) -> None:
    async with _uow(engine) as uow:
        await uow.authors.add(Author.create("Never Saved"))

    async with _uow(engine) as uow:
        assert await uow.authors.find(AuthorQuery(limit=10)) == []
    assert await _outbox_rows(engine) == []


async def test_concurrent_duplicates_get_exactly_one_author(engine: AsyncEngine) -> None:
    results = await asyncio.gather(
        *(handlers.create_author(CreateAuthor("Same Name"), _uow(engine)) for _ in range(5)),
        return_exceptions=True,
    )

    created = [r for r in results if isinstance(r, Author)]
    assert len(created) == 1
    assert all(isinstance(r, DuplicateAuthorName) for r in results if r not in created)
    assert len(await _outbox_rows(engine)) == 1


async def test_keyset_and_filters_match_in_sql(engine: AsyncEngine) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with _uow(engine) as uow:
        for i in range(5):
            # equal timestamps in pairs: the id breaks the tie
            stamp = start + timedelta(seconds=i // 2)
            await uow.authors.add(Author.create(f"Writer {i}", "50%_off", now=stamp))
        await uow.commit()
    async with _uow(engine) as uow:
        everyone = await uow.authors.find(AuthorQuery(limit=10))
        after = await uow.authors.find(
            AuthorQuery(limit=10, after=(everyone[1].created_at, everyone[1].id))
        )
        literal = await uow.authors.count(AuthorQuery(limit=10, search="%_o"))
        no_wildcards = await uow.authors.count(AuthorQuery(limit=10, search="5_%"))

    assert [(a.created_at, a.id) for a in everyone] == sorted(
        (a.created_at, a.id) for a in everyone
    )
    assert after == everyone[2:]
    assert (literal, no_wildcards) == (5, 0)


@pytest.mark.parametrize("count", [3])
async def test_outbox_ids_follow_commit_attempts(engine: AsyncEngine, count: int) -> None:
    for i in range(count):
        await handlers.create_author(CreateAuthor(f"Author {i}"), _uow(engine))

    rows = await _outbox_rows(engine)

    assert [r["payload"]["data"]["name"] for r in rows] == [f"Author {i}" for i in range(count)]  # type: ignore[index]
