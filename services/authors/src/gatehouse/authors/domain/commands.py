"""Commands: what a caller asks the service to do, named imperatively."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command."""


@dataclass(frozen=True, slots=True)
class CreateAuthor(Command):
    name: str
    bio: str = ""
