"""Channels: the one table of what exists, who may subscribe, and which events go where.

| channel          | events                                             | roles           |
|------------------|----------------------------------------------------|-----------------|
| `authors`        | every author event                                 | get-authors     |
| `authors.<uuid>` | the events of one author and of that author's books | get-authors     |
| `books`          | every book event                                   | get-authors     |
| `audit`          | every change of the authors service (the audit trail) | view-audit-logs |

(``admin`` holds every role.) Each channel is fed by one source, the authors
service, whose relay stamps ``sequence`` in publication order: that sequence is
the channel's position for resume.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from gatehouse.common.errors import BadRequest, NotFound
from gatehouse.common.events import CloudEvent
from gatehouse.common.identity import GET_AUTHORS, VIEW_AUDIT_LOGS, Principal

AUTHORS_SOURCE = "/gatehouse/authors"
AUTHOR_EVENT = "gatehouse.author."
BOOK_EVENT = "gatehouse.book."
_NAME = re.compile(r"^(?P<family>[a-z]+)(?:\.(?P<key>.{1,64}))?$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Family:
    """A kind of channel: its name (plus ``.<key>`` when keyed), roles and source."""

    name: str
    roles: frozenset[str]
    summary: str
    keyed: bool = False
    source: str = AUTHORS_SOURCE

    @property
    def pattern(self) -> str:
        return f"{self.name}.{{id}}" if self.keyed else self.name


FAMILIES: tuple[Family, ...] = (
    Family("authors", frozenset({GET_AUTHORS}), "every author event"),
    Family(
        "authors",
        frozenset({GET_AUTHORS}),
        "the events of one author and of its books; `{id}` is the author's UUID",
        keyed=True,
    ),
    Family("books", frozenset({GET_AUTHORS}), "every book event"),
    Family(
        "audit",
        frozenset({VIEW_AUDIT_LOGS}),
        "every change made through the authors service, as it happens (the audit trail)",
    ),
)
_BY_NAME = {(f.name, f.keyed): f for f in FAMILIES}


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    family: Family

    @property
    def roles(self) -> frozenset[str]:
        return self.family.roles

    @property
    def source(self) -> str:
        return self.family.source

    def allows(self, principal: Principal) -> bool:
        return principal.has_any(self.family.roles)


def parse_channel(name: str) -> Channel:
    """The channel called ``name``: :class:`NotFound` for an unknown one,
    :class:`BadRequest` for a keyed one whose key is not a canonical UUID."""
    match = _NAME.match(name)
    family = _BY_NAME.get((match["family"], match["key"] is not None)) if match else None
    if family is None or match is None:
        raise NotFound(f"unknown channel {name[:80]!r}")
    key = match["key"]
    if key is not None and _uuid(key) != key:
        raise BadRequest(f"channel {family.pattern!r} needs a lowercase UUID, got {key[:80]!r}")
    return Channel(name, family)


def channels_for(event: CloudEvent) -> list[str]:
    """The channels an event is pushed to (none for events clients do not see)."""
    if event.source != AUTHORS_SOURCE:
        return []
    for prefix, route in _ROUTES:
        if event.type.startswith(prefix):
            return route(event)
    return []


def _author_channels(event: CloudEvent) -> list[str]:
    return ["authors", *_own_channel(event.subject), "audit"]


def _book_channels(event: CloudEvent) -> list[str]:
    author = event.data.get("author_id")
    return ["books", *_own_channel(author if isinstance(author, str) else None), "audit"]


_ROUTES: tuple[tuple[str, Callable[[CloudEvent], list[str]]], ...] = (
    (AUTHOR_EVENT, _author_channels),
    (BOOK_EVENT, _book_channels),
)


def _own_channel(author_id: str | None) -> list[str]:
    if author_id is None or _uuid(author_id) != author_id:
        return []
    return [f"authors.{author_id}"]


def _uuid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
