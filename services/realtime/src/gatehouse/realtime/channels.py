"""Channels, who may subscribe to them, and which channels an event goes to.

``authors`` carries every author event; ``authors.<id>`` the events of one author.
Both need the ``get-authors`` role (``admin`` holds every role).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gatehouse.common.errors import NotFound
from gatehouse.common.events import CloudEvent
from gatehouse.common.identity import GET_AUTHORS, Principal

AUTHORS = "authors"
AUTHOR_EVENT_PREFIX = "gatehouse.author."
_CHANNEL = re.compile(r"^(?P<family>[a-z]+)(?:\.(?P<key>[A-Za-z0-9_-]{1,64}))?$")
_FAMILY_ROLES: dict[str, frozenset[str]] = {AUTHORS: frozenset({GET_AUTHORS})}


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    roles: frozenset[str]

    def allows(self, principal: Principal) -> bool:
        return principal.has_any(self.roles)


def parse_channel(name: str) -> Channel:
    """The channel called ``name``, or :class:`NotFound` when no such channel exists."""
    match = _CHANNEL.match(name)
    roles = _FAMILY_ROLES.get(match["family"]) if match else None
    if roles is None:
        raise NotFound(f"unknown channel {name[:80]!r}")
    return Channel(name, roles)


def channels_for(event: CloudEvent) -> list[str]:
    """The channels an event is pushed to (none for events clients do not see)."""
    if not event.type.startswith(AUTHOR_EVENT_PREFIX):
        return []
    channels = [AUTHORS]
    if event.subject and _CHANNEL.match(f"{AUTHORS}.{event.subject}"):
        channels.append(f"{AUTHORS}.{event.subject}")
    return channels
