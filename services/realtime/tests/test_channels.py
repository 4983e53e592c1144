"""The channel table: names, roles, and which events go where."""

from __future__ import annotations

import pytest

from gatehouse.common.errors import BadRequest, NotFound
from gatehouse.common.events import CloudEvent
from gatehouse.common.identity import Principal
from gatehouse.realtime.channels import channels_for, parse_channel

AUTHOR = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
BOOK = "6fa459ea-ee8a-4ca4-894e-db77e160355e"


def principal(*roles: str) -> Principal:
    return Principal("u", "u", frozenset(roles))


def event(kind: str, subject: str | None, **data: str) -> CloudEvent:
    return CloudEvent(source="/gatehouse/authors", type=kind, subject=subject, data=data)


@pytest.mark.parametrize(
    ("name", "allowed", "refused"),
    [
        ("authors", "get-authors", "view-audit-logs"),
        (f"authors.{AUTHOR}", "get-authors", "create-author"),
        ("books", "get-authors", "view-audit-logs"),
        ("audit", "view-audit-logs", "get-authors"),
    ],
)
def test_every_channel_has_its_roles(name: str, allowed: str, refused: str) -> None:
    channel = parse_channel(name)
    assert channel.allows(principal(allowed))
    assert channel.allows(principal("admin"))
    assert not channel.allows(principal(refused))
    assert not channel.allows(principal())


@pytest.mark.parametrize(
    "name",
    [
        "authors.5",
        "authors.not-a-uuid",
        f"authors.{AUTHOR.upper()}",
        f"authors.{{{AUTHOR}}}",
        f"authors.{AUTHOR.replace('-', '')}",
        f"authors.{AUTHOR}\n",
    ],
)
def test_an_author_channel_needs_a_canonical_uuid(name: str) -> None:
    """Regression: `authors.<anything>` was accepted (and never received an event)."""
    with pytest.raises(BadRequest, match="UUID"):
        parse_channel(name)


@pytest.mark.parametrize("name", ["secrets", "audit.x", "books.x", "", "authors.", "AUTHORS"])
def test_unknown_channels_are_not_found(name: str) -> None:
    with pytest.raises(NotFound):
        parse_channel(name)


def test_author_events_go_to_authors_its_own_channel_and_audit() -> None:
    created = event("gatehouse.author.created", AUTHOR, id=AUTHOR)
    assert channels_for(created) == ["authors", f"authors.{AUTHOR}", "audit"]


def test_book_events_go_to_books_their_authors_channel_and_audit() -> None:
    created = event("gatehouse.book.created", BOOK, id=BOOK, author_id=AUTHOR)
    assert channels_for(created) == ["books", f"authors.{AUTHOR}", "audit"]


def test_events_of_other_sources_or_kinds_reach_no_channel() -> None:
    user = CloudEvent(source="/gatehouse/auth", type="gatehouse.user.created", subject="u")
    forged = CloudEvent(source="/elsewhere", type="gatehouse.author.created", subject=AUTHOR)
    assert channels_for(user) == []
    assert channels_for(forged) == []
    assert channels_for(event("gatehouse.author.created", "a/b")) == ["authors", "audit"]
