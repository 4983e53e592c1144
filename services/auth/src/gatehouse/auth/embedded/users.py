"""The embedded issuer's users: argon2 password hashes and realm roles."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gatehouse.common.identity import (
    ALL_ROLES,
    CREATE_AUTHOR,
    DELETE_AUTHOR,
    GET_AUTHORS,
    UPDATE_AUTHOR,
    VIEW_AUDIT_LOGS,
)

# The demo identities of DESIGN §13.
DEMO_ROLES: Mapping[str, tuple[str, ...]] = {
    "admin": ALL_ROLES,
    "editor": (GET_AUTHORS, CREATE_AUTHOR, UPDATE_AUTHOR, DELETE_AUTHOR),
    "viewer": (GET_AUTHORS,),
    "auditor": (VIEW_AUDIT_LOGS,),
    "nobody": (),
}
_SUBJECT_NAMESPACE = uuid.UUID("6f1c9a52-3f0e-5b6a-9d1e-7a4b2c8d0e11")


def subject_for(username: str) -> str:
    """A stable ``sub`` per username, the same on every start and every machine."""
    return str(uuid.uuid5(_SUBJECT_NAMESPACE, username.lower()))


@dataclass(frozen=True, slots=True)
class User:
    username: str
    subject: str
    roles: tuple[str, ...]
    password_hash: str
    enabled: bool = True


class UserDirectory:
    """Users by (case-insensitive) username; checking a password runs argon2 off the loop.

    This one holds them in memory (unit tests); ``sql_users.SqlUserDirectory`` reads the
    auth database, where the admin API changes them.
    """

    def __init__(self, users: Iterable[User], hasher: PasswordHasher) -> None:
        self._users = {user.username: user for user in users}
        self._hasher = hasher
        # argon2 takes 64 MiB a check by default: bound how many run at once.
        self._checks = asyncio.Semaphore(os.cpu_count() or 1)
        # Unknown usernames are checked against this hash too, so timing does not tell
        # whether a username exists.
        known = [user.password_hash for user in self._users.values()]
        self._decoy = known[0] if known else hasher.hash("decoy password")

    @classmethod
    async def demo(cls, password: str, hasher: PasswordHasher) -> UserDirectory:
        made = (_new_user(name, roles, password, hasher) for name, roles in DEMO_ROLES.items())
        return cls(await asyncio.gather(*made), hasher)

    async def get(self, username: str) -> User | None:
        """The user who may sign in as ``username``: None when unknown or disabled."""
        user = await self.find(username)
        return user if user and user.enabled else None

    async def find(self, username: str) -> User | None:
        return self._users.get(username.lower())

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user when ``password`` is theirs and they may sign in, else None."""
        user = await self.get(username)
        stored = user.password_hash if user else self._decoy
        async with self._checks:
            ok = await asyncio.to_thread(self._verify, stored, password)
        return user if ok and user else None

    async def hash(self, password: str) -> str:
        async with self._checks:
            return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


async def _new_user(
    username: str, roles: tuple[str, ...], password: str, hasher: PasswordHasher
) -> User:
    digest = await asyncio.to_thread(hasher.hash, password)
    return User(username.lower(), subject_for(username), roles, digest)
