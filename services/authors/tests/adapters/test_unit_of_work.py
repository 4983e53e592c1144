"""Repositories, unit of work, outbox, audit and idempotency on SQLite and PostgreSQL,
through the real message bus."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters import orm
from gatehouse.authors.adapters.database import session_factory
from gatehouse.authors.adapters.repository import AuthorFilter, Slice, SortKey
from gatehouse.authors.domain import commands
from gatehouse.authors.domain.errors import (
    AuthorHasBooks,
    AuthorNotFound,
    DuplicateAuthorName,
    DuplicateIsbn,
    StaleVersion,
)
from gatehouse.authors.domain.model import Author
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messagebus import MessageBus, Outcome
from gatehouse.authors.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from gatehouse.common.identity import Principal

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def ctx(user: str = "editor", **extra: Any) -> RequestContext:
    principal = Principal(f"sub-{user}", user, frozenset({"admin"}))
    return RequestContext(principal, request_id=f"rid-{user}", traceparent=TP, **extra)


async def rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        found = await conn.execute(select(orm.outbox).order_by(orm.outbox.c.id))
        return [dict(row._mapping) for row in found]


async def create(bus: MessageBus, name: str, **extra: Any) -> dict[str, Any]:
    outcome = await bus.handle(commands.CreateAuthor(name), ctx(**extra))
    assert outcome.resource is not None
    return outcome.resource


async def test_a_committed_author_reads_back_as_written(messagebus: MessageBus) -> None:
    created = await create(messagebus, "Ted Chiang")

    found = await messagebus.handle(messages.GetAuthor(uuid.UUID(created["id"])), ctx())

    assert found == created
    assert created["created_at"].endswith("Z")


async def test_the_event_and_its_audit_entry_are_in_the_same_transaction(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    created = await create(messagebus, "Ted Chiang", client_ip="198.51.100.4", user_agent="ua")

    [row] = await rows(engine)

    assert (row["type"], row["sent_at"], row["sequence"]) == (
        "gatehouse.author.created",
        None,
        None,
    )
    assert row["payload"]["subject"] == created["id"]
    assert row["payload"]["data"] == created
    assert row["payload"]["traceparent"] == TP
    assert (row["actor_username"], row["actor_subject"], row["actor_roles"]) == (
        "editor",
        "sub-editor",
        ["admin"],
    )
    assert (row["client_ip"], row["user_agent"], row["request_id"]) == (
        "198.51.100.4",
        "ua",
        "rid-editor",
    )
    assert (row["entity_type"], row["entity_id"], row["action"]) == (
        "author",
        created["id"],
        "created",
    )


async def test_a_refused_write_is_audited_and_never_becomes_an_event(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    await create(messagebus, "Ted Chiang")
    with pytest.raises(DuplicateAuthorName):
        await create(messagebus, "ted chiang", user="mallory", client_ip="198.51.100.9")

    page = await messagebus.handle(messages.ListAudit(outcome="refused"), ctx())
    [record] = page.items
    assert (record["actor"]["username"], record["client_ip"], record["action"]) == (
        "mallory",
        "198.51.100.9",
        "created",
    )
    assert record["refusal"] == {
        "status": 409,
        "code": "duplicate_author_name",
        "fields": ["bio", "name"],
    }
    assert [row["type"] for row in await rows(engine)] == ["gatehouse.author.created"]


async def test_without_commit_neither_author_nor_event_is_kept(engine: AsyncEngine) -> None:
    async with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        await uow.authors.add(Author.create("Never Saved"))

    async with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        assert await uow.authors.find(AuthorFilter(), Slice(10)) == []
    assert await rows(engine) == []


async def test_twenty_concurrent_creates_of_one_name_make_one_author(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    spellings = ["Octavia Butler", "octavia butler", "Octavia Butler\u200b", "OCTAVIA\u00a0BUTLER"]
    results = await asyncio.gather(
        *(create(messagebus, spellings[i % 4]) for i in range(20)), return_exceptions=True
    )

    created = [r for r in results if isinstance(r, dict)]
    assert len(created) == 1
    assert all(isinstance(r, DuplicateAuthorName) for r in results if r not in created)
    assert len(await rows(engine)) == 1


async def test_two_writes_from_one_version_make_one_change(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    author_id = uuid.UUID((await create(messagebus, "Le Guin"))["id"])

    results = await asyncio.gather(
        *(
            messagebus.handle(commands.PatchAuthor(author_id, {"bio": bio}, 1), ctx())
            for bio in ("first", "second")
        ),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["Outcome", "StaleVersion"]
    winner = next(r for r in results if isinstance(r, Outcome))
    found = await messagebus.handle(messages.GetAuthor(author_id), ctx())
    assert (found["version"], found["bio"]) == (2, winner.resource["bio"])
    assert len(await rows(engine)) == 2


async def test_a_concurrent_change_without_if_match_still_cannot_be_lost(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    """The version column guards every UPDATE, even when the caller sent no If-Match."""
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite writers hold the write lock from BEGIN: none can land in between")
    author_id = uuid.UUID((await create(messagebus, "Le Guin"))["id"])
    async with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        author = await uow.authors.get(author_id)
        assert author is not None
        async with engine.begin() as conn:  # someone else writes meanwhile
            await conn.execute(
                update(orm.authors).where(orm.authors.c.id == author_id).values(version=2)
            )
        author.update(bio="mine")
        with pytest.raises(StaleVersion):
            await uow.authors.save(author)


async def test_an_idempotent_create_raced_ten_times_writes_once(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    keyed = ctx(idempotency_key="same-key")

    outcomes = await asyncio.gather(
        *(messagebus.handle(commands.CreateAuthor("Le Guin"), keyed) for _ in range(10))
    )

    assert len({o.resource["id"] for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert len(await rows(engine)) == 1


async def test_an_expired_idempotency_key_runs_again(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    keyed = ctx(idempotency_key="old")
    first = await messagebus.handle(commands.CreateAuthor("A"), keyed)
    async with engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(orm.idempotency_keys).values(expires_at=past))

    again = await messagebus.handle(commands.CreateAuthor("B"), keyed)

    assert again.replayed is False
    assert again.resource["id"] != first.resource["id"]


async def test_books_reference_authors_and_isbns_are_unique(messagebus: MessageBus) -> None:
    author_id = uuid.UUID((await create(messagebus, "Le Guin"))["id"])
    await messagebus.handle(commands.CreateBook(author_id, "A", 1969, "9780441478125"), ctx())

    with pytest.raises(DuplicateIsbn):
        await messagebus.handle(commands.CreateBook(author_id, "B", 1970, "9780441478125"), ctx())
    with pytest.raises(AuthorNotFound):
        await messagebus.handle(commands.CreateBook(uuid.uuid4(), "C", 1970), ctx())
    with pytest.raises(AuthorHasBooks):
        await messagebus.handle(commands.DeleteAuthor(author_id), ctx())


async def test_keyset_paging_skips_and_repeats_nothing_while_rows_are_added(
    messagebus: MessageBus,
) -> None:
    for i in range(7):
        await create(messagebus, f"Writer {i}")
    seen: list[str] = []
    cursor = None
    while True:
        page = await messagebus.handle(
            messages.ListAuthors(messages.Window(per_page=3, cursor=cursor, sort="-name")), ctx()
        )
        seen += [a["name"] for a in page.items]
        await create(messagebus, f"Late {len(seen)}")  # sorts after every "Writer"
        if not page.has_more:
            break
        cursor = page.next_cursor

    assert seen[:7] == [f"Writer {i}" for i in reversed(range(7))]
    assert len(seen) == len(set(seen))


async def test_filters_escape_like_wildcards_and_combine(
    messagebus: MessageBus, engine: AsyncEngine
) -> None:
    for name in ("50%_off", "5000 off", "Other"):
        await create(messagebus, name)

    literal = await messagebus.handle(messages.ListAuthors(search="%_o"), ctx())
    exact = await messagebus.handle(messages.ListAuthors(name="OTHER"), ctx())
    none = await messagebus.handle(
        messages.ListAuthors(name="Other", created_before=datetime(2000, 1, 1, tzinfo=UTC)), ctx()
    )

    assert [a["name"] for a in literal.items] == ["50%_off"]
    assert [a["name"] for a in exact.items] == ["Other"]
    assert (none.items, none.total) == ([], 0)


async def test_sql_ordering_is_by_code_point_on_both_databases(engine: AsyncEngine) -> None:
    async with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        for name in ("b", "B2", "a", "Á", "Z"):
            await uow.authors.add(Author.create(name))
        await uow.commit()
    async with SqlAlchemyUnitOfWork(session_factory(engine)) as uow:
        found = await uow.authors.find(AuthorFilter(), Slice(10, (SortKey("name_key"),)))
    assert [a.name for a in found] == ["a", "b", "B2", "Z", "Á"]


async def test_the_audit_trail_combines_filters_and_pages_newest_first(
    messagebus: MessageBus,
) -> None:
    a = await create(messagebus, "A", user="alice")
    await create(messagebus, "B", user="bob")
    await messagebus.handle(commands.PatchAuthor(uuid.UUID(a["id"]), {"bio": "x"}), ctx(user="bob"))
    auditor = ctx()

    bob_updates = await messagebus.handle(
        messages.ListAudit(actor="bob", action="updated"), auditor
    )
    on_a = await messagebus.handle(messages.ListAudit(entity_id=uuid.UUID(a["id"])), auditor)
    first = await messagebus.handle(messages.ListAudit(limit=2), auditor)
    rest = await messagebus.handle(messages.ListAudit(limit=2, cursor=first.next_cursor), auditor)
    future = await messagebus.handle(
        messages.ListAudit(since=datetime.now(UTC) + timedelta(hours=1)), auditor
    )

    assert [(r["actor"]["username"], r["action"]) for r in bob_updates.items] == [
        ("bob", "updated")
    ]
    assert bob_updates.items[0]["changes"] == {"bio": {"before": "", "after": "x"}}
    assert [r["action"] for r in on_a.items] == ["updated", "created"]
    assert [r["action"] for r in first.items + rest.items] == ["updated", "created", "created"]
    assert future.items == []
