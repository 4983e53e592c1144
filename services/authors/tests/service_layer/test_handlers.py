"""Use cases through the message bus, on the in-memory adapters."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from gatehouse.authors.domain import commands
from gatehouse.authors.domain.errors import (
    AuthorHasBooks,
    AuthorNotFound,
    DuplicateAuthorName,
    DuplicateIsbn,
    StaleVersion,
)
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.errors import IdempotencyKeyReused, InvalidParameter
from gatehouse.authors.service_layer.messagebus import MessageBus, Outcome
from gatehouse.common.errors import Forbidden, Unauthorized
from gatehouse.common.identity import Principal

from .fakes import FakeDatabase, fake_bus


def ctx(*roles: str, user: str = "editor", **extra: Any) -> RequestContext:
    principal = Principal(subject=f"sub-{user}", username=user, roles=frozenset(roles))
    return RequestContext(principal, request_id="rid-1", traceparent=TP, **extra)


TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ADMIN = ctx("admin")


@pytest.fixture
def bus_db() -> tuple[MessageBus, FakeDatabase]:
    return fake_bus()


async def create(bus: MessageBus, name: str, bio: str = "") -> dict[str, Any]:
    outcome = await bus.handle(commands.CreateAuthor(name, bio), ADMIN)
    assert isinstance(outcome, Outcome)
    assert outcome.resource is not None
    return outcome.resource


async def test_creating_an_author_commits_it_with_its_event_and_audit_entry(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    outcome = await bus.handle(
        commands.CreateAuthor("Octavia Butler", "Kindred"),
        ctx("create-author", client_ip="203.0.113.7", user_agent="ua/1"),
    )

    author = outcome.resource
    assert author is not None
    assert await bus.handle(messages.GetAuthor(uuid.UUID(author["id"])), ADMIN) == author
    [(event, entry, _)] = db.outbox
    assert (event.type, event.source, event.subject) == (
        "gatehouse.author.created",
        "/gatehouse/authors",
        author["id"],
    )
    assert event.data == author
    assert event.traceparent == TP
    assert (entry.actor_username, entry.actor_roles, entry.request_id) == (
        "editor",
        ("create-author",),
        "rid-1",
    )
    assert (entry.client_ip, entry.user_agent, entry.action) == ("203.0.113.7", "ua/1", "created")
    assert entry.changes["name"] == {"before": None, "after": "Octavia Butler"}


async def test_roles_are_checked_by_the_bus(bus_db: tuple[MessageBus, FakeDatabase]) -> None:
    bus, db = bus_db
    with pytest.raises(Forbidden):
        await bus.handle(commands.CreateAuthor("X"), ctx("get-authors"))
    with pytest.raises(Unauthorized):
        await bus.handle(commands.CreateAuthor("X"), RequestContext(principal=None))
    assert (db.authors, db.outbox) == ({}, [])
    # The refusal is audited (who tried what); the anonymous caller has no one to name.
    [(entry, _)] = db.refusals
    assert (entry.actor_username, entry.action, entry.entity_type) == (
        "editor",
        "created",
        "author",
    )
    assert entry.refusal is not None
    assert (entry.refusal.status, entry.refusal.code) == (403, "forbidden")
    assert entry.refusal.fields == ("bio", "name")


async def test_refused_writes_are_audited_with_who_what_and_why(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _ = bus_db
    author = await create(bus, "Octavia Butler")
    target = uuid.UUID(author["id"])
    tries = [
        (commands.CreateAuthor("octavia butler"), DuplicateAuthorName),
        (commands.PatchAuthor(target, {"bio": "x"}, if_match=7), StaleVersion),
        (commands.DeleteAuthor(uuid.uuid4()), AuthorNotFound),
    ]
    for command, error in tries:
        with pytest.raises(error):
            await bus.handle(command, ctx("admin", user="mallory", client_ip="198.51.100.9"))

    page = await bus.handle(messages.ListAudit(outcome="refused", actor="mallory"), ADMIN)
    assert [
        (r["action"], r["refusal"]["status"], r["refusal"]["code"], r["refusal"]["fields"])
        for r in reversed(page.items)
    ] == [
        ("created", 409, "duplicate_author_name", ["bio", "name"]),
        ("updated", 412, "precondition_failed", ["bio"]),
        ("deleted", 404, "author_not_found", []),
    ]
    assert page.items[1]["entity_id"] == author["id"]
    assert {(r["client_ip"], r["outcome"], r["event"]) for r in page.items} == {
        ("198.51.100.9", "refused", None)
    }
    succeeded = await bus.handle(messages.ListAudit(), ADMIN)
    assert [r["outcome"] for r in succeeded.items] == ["succeeded"]  # the create only


async def test_a_name_that_only_looks_different_is_a_conflict_and_commits_nothing(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    await create(bus, "Octavia Butler")

    with pytest.raises(DuplicateAuthorName) as caught:
        await create(bus, "octavia  butler\u200b")

    assert caught.value.status == 409
    assert (len(db.authors), len(db.outbox), len(db.refusals)) == (1, 1, 1)  # audited only


async def test_patch_and_replace_bump_the_version_and_publish_what_changed(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    author = await create(bus, "Le Guin")
    author_id = uuid.UUID(author["id"])

    patched = await bus.handle(commands.PatchAuthor(author_id, {"bio": "Earthsea"}, 1), ADMIN)
    replaced = await bus.handle(commands.ReplaceAuthor(author_id, "Ursula Le Guin", "", 2), ADMIN)

    assert (patched.resource["version"], replaced.resource["version"]) == (2, 3)
    updates = [e for e, _, _ in db.outbox if e.type == "gatehouse.author.updated"]
    assert [e.data["version"] for e in updates] == [2, 3]
    assert db.outbox[-1][1].changes == {
        "name": {"before": "Le Guin", "after": "Ursula Le Guin"},
        "bio": {"before": "Earthsea", "after": ""},
    }


async def test_a_stale_if_match_is_refused_and_changes_nothing(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _db = bus_db
    author = await create(bus, "Le Guin")
    author_id = uuid.UUID(author["id"])
    await bus.handle(commands.PatchAuthor(author_id, {"bio": "a"}, 1), ADMIN)

    with pytest.raises(StaleVersion):
        await bus.handle(commands.PatchAuthor(author_id, {"bio": "b"}, 1), ADMIN)

    assert (await bus.handle(messages.GetAuthor(author_id), ADMIN))["bio"] == "a"


async def test_an_author_with_books_cannot_be_deleted_until_they_are_gone(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    author_id = uuid.UUID((await create(bus, "Le Guin"))["id"])
    book = await bus.handle(commands.CreateBook(author_id, "Earthsea", 1968), ADMIN)

    with pytest.raises(AuthorHasBooks):
        await bus.handle(commands.DeleteAuthor(author_id), ADMIN)
    await bus.handle(commands.DeleteBook(uuid.UUID(book.resource["id"])), ADMIN)
    deleted = await bus.handle(commands.DeleteAuthor(author_id), ADMIN)

    assert deleted.resource is None
    assert [e.type for e in db.events][-2:] == [
        "gatehouse.book.deleted",
        "gatehouse.author.deleted",
    ]
    assert db.events[-1].data["name"] == "Le Guin"
    with pytest.raises(AuthorNotFound):
        await bus.handle(messages.GetAuthor(author_id), ADMIN)


async def test_books_need_an_existing_author_and_a_free_isbn(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _ = bus_db
    author_id = uuid.UUID((await create(bus, "Le Guin"))["id"])
    await bus.handle(commands.CreateBook(author_id, "A", 1969, "9780441478125"), ADMIN)

    with pytest.raises(AuthorNotFound):
        await bus.handle(commands.CreateBook(uuid.uuid4(), "B", 1970), ADMIN)
    with pytest.raises(DuplicateIsbn):
        await bus.handle(commands.CreateBook(author_id, "C", 1971, "0-441-47812-3"), ADMIN)


async def test_an_idempotency_key_replays_the_first_result_and_refuses_another_body(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    keyed = ctx("create-author", idempotency_key="k-1")

    first = await bus.handle(commands.CreateAuthor("Le Guin"), keyed)
    again = await bus.handle(commands.CreateAuthor("Le Guin"), keyed)

    assert (again.resource, again.replayed, first.replayed) == (first.resource, True, False)
    assert db.commits == 1
    with pytest.raises(IdempotencyKeyReused):
        await bus.handle(commands.CreateAuthor("Someone else"), keyed)
    other_user = ctx("create-author", user="viewer", idempotency_key="k-1")
    assert (await bus.handle(commands.CreateAuthor("Other"), other_user)).replayed is False


async def test_concurrent_duplicates_of_one_key_write_once(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, db = bus_db
    keyed = ctx("create-author", idempotency_key="race")

    outcomes = await asyncio.gather(
        *(bus.handle(commands.CreateAuthor("Le Guin"), keyed) for _ in range(10))
    )

    assert db.commits == 1
    assert len({o.resource["id"] for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1


async def test_lists_filter_sort_and_page_with_a_stable_cursor(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _ = bus_db
    for name in ("Carol", "alice", "Bob", "Dave"):
        await create(bus, name)
    window = messages.Window(per_page=2, sort="name")

    first = await bus.handle(messages.ListAuthors(window), ADMIN)
    await create(bus, "Aaron")  # sorts before the cursor: not seen, nothing repeated
    second = await bus.handle(
        messages.ListAuthors(messages.Window(2, cursor=first.next_cursor, sort="name")), ADMIN
    )

    assert [a["name"] for a in first.items] == ["alice", "Bob"]
    assert [a["name"] for a in second.items] == ["Carol", "Dave"]
    assert (first.total, first.page, second.page, second.has_more) == (4, 1, None, False)
    searched = await bus.handle(messages.ListAuthors(search="A"), ADMIN)
    assert sorted(a["name"] for a in searched.items) == ["Aaron", "Carol", "Dave", "alice"]


@pytest.mark.parametrize(
    "window",
    [
        messages.Window(per_page=0),
        messages.Window(per_page=101),
        messages.Window(page=10_001),
        messages.Window(sort="bio"),
        messages.Window(cursor="not-a-cursor"),
    ],
)
async def test_out_of_bounds_windows_are_a_400_naming_the_parameter(
    bus_db: tuple[MessageBus, FakeDatabase], window: messages.Window
) -> None:
    bus, _ = bus_db
    with pytest.raises(InvalidParameter) as caught:
        await bus.handle(messages.ListAuthors(window), ADMIN)
    assert caught.value.status == 400


async def test_a_cursor_of_another_sort_is_refused(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _ = bus_db
    for name in "abc":
        await create(bus, name)
    first = await bus.handle(messages.ListAuthors(messages.Window(1, sort="name")), ADMIN)
    with pytest.raises(InvalidParameter):
        await bus.handle(
            messages.ListAuthors(messages.Window(1, cursor=first.next_cursor, sort="-name")),
            ADMIN,
        )


async def test_the_audit_trail_filters_combine_with_and(
    bus_db: tuple[MessageBus, FakeDatabase],
) -> None:
    bus, _ = bus_db
    a = await bus.handle(commands.CreateAuthor("A"), ctx("admin", user="alice"))
    await bus.handle(commands.CreateAuthor("B"), ctx("admin", user="bob"))
    await bus.handle(
        commands.PatchAuthor(uuid.UUID(a.resource["id"]), {"bio": "x"}), ctx("admin", user="bob")
    )
    auditor = ctx("view-audit-logs")

    by_bob = await bus.handle(messages.ListAudit(actor="bob"), auditor)
    bob_updates = await bus.handle(messages.ListAudit(actor="bob", action="updated"), auditor)
    alice_updates = await bus.handle(messages.ListAudit(actor="alice", action="updated"), auditor)

    assert [r["action"] for r in by_bob.items] == ["updated", "created"]
    assert [r["entity_id"] for r in bob_updates.items] == [a.resource["id"]]
    assert alice_updates.items == []
    with pytest.raises(Forbidden):
        await bus.handle(messages.ListAudit(), ctx("get-authors"))


async def test_the_audit_trail_pages_newest_first(bus_db: tuple[MessageBus, FakeDatabase]) -> None:
    bus, _ = bus_db
    for name in "abcde":
        await create(bus, name)
    auditor = ctx("view-audit-logs")

    first = await bus.handle(messages.ListAudit(limit=3), auditor)
    second = await bus.handle(messages.ListAudit(limit=3, cursor=first.next_cursor), auditor)

    names = [r["changes"]["name"]["after"] for r in first.items + second.items]
    assert names == list("edcba")
    assert second.next_cursor is None
