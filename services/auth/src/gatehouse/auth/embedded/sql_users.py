"""The SQL adapter of the user directory: users and their roles in the auth database.

Every replica reads the same rows, so a user the admin API disables on one replica
can no longer sign in or refresh on any. The queries take a connection, so the admin
API runs them inside its own transaction together with the audit row and the
revocation items (``gatehouse.auth.admin.service``).

Demo identities are seeded at start: inserted when missing, and their password set
from ``GATEHOUSE_DEMO_PASSWORD`` while no admin has changed them (``seeded``). Once an
admin changes one, it is the admin's. Without demo users (production without a demo
password) the untouched seeded rows of an earlier run cannot sign in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.embedded.users import DEMO_ROLES, User, UserDirectory, subject_for
from gatehouse.auth.tables import sessions, user_roles, users

log = logging.getLogger("gatehouse.auth.users")


class SqlUserDirectory(UserDirectory):
    """Users in the auth database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: AsyncEngine,
        hasher: PasswordHasher,
        *,
        demo_users: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__([], hasher)
        self._engine = engine
        self._demo_users = demo_users
        self._clock = clock

    async def find(self, username: str) -> User | None:
        async with self._engine.connect() as conn:
            row = await load(conn, username)
        if row is None or (row.seeded and not self._demo_users):
            return None
        return row.user

    async def seed_demo(self, password: str) -> None:
        """The demo identities of DESIGN §13, with ``password`` unless an admin changed them."""
        await asyncio.gather(
            *(self._seed(name, roles, password) for name, roles in DEMO_ROLES.items())
        )

    async def _seed(self, username: str, roles: tuple[str, ...], password: str) -> None:
        async with self._engine.connect() as conn:
            row = await load(conn, username)
        if row is not None:
            if row.seeded and not await asyncio.to_thread(
                self._verify, row.user.password_hash, password
            ):
                await self._reseed(username, password)
            return
        user = User(username, subject_for(username), roles, await self.hash(password))
        try:
            async with self._engine.begin() as conn:
                await insert(conn, user, seeded=True, now=self._clock())
        except IntegrityError:
            log.debug("demo user %s was seeded by another replica", username)

    async def _reseed(self, username: str, password: str) -> None:
        digest = await self.hash(password)
        async with self._engine.begin() as conn:
            await conn.execute(
                users.update()
                .where(users.c.username == username, users.c.seeded.is_(True))
                .values(password_hash=digest, updated_at=self._clock())
            )


class Row:
    """A user as stored, with its bookkeeping."""

    __slots__ = ("created_at", "seeded", "updated_at", "user")

    def __init__(self, user: User, seeded: bool, created_at: float, updated_at: float) -> None:
        self.user = user
        self.seeded = seeded
        self.created_at = created_at
        self.updated_at = updated_at


async def load(conn: AsyncConnection, username: str) -> Row | None:
    found = (
        (await conn.execute(sa.select(users).where(users.c.username == username.lower())))
        .mappings()
        .first()
    )
    if found is None:
        return None
    return _row(found, await roles_of(conn, [found["username"]]))


async def page(conn: AsyncConnection, offset: int, limit: int) -> tuple[list[Row], int]:
    """Users in username order, and how many there are in all."""
    total = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
    query = sa.select(users).order_by(users.c.username).offset(offset).limit(limit)
    found = (await conn.execute(query)).mappings().all()
    roles = await roles_of(conn, [r["username"] for r in found])
    return [_row(r, roles) for r in found], int(total)


async def roles_of(conn: AsyncConnection, usernames: Sequence[str]) -> dict[str, list[str]]:
    query = sa.select(user_roles).where(user_roles.c.username.in_(usernames))
    held: dict[str, list[str]] = {name: [] for name in usernames}
    for username, role in (await conn.execute(query)).all():
        held[username].append(role)
    return held


async def insert(conn: AsyncConnection, user: User, *, seeded: bool, now: float) -> None:
    """Raises ``IntegrityError`` when the username (or subject) is taken."""
    await conn.execute(
        users.insert().values(
            username=user.username,
            subject=user.subject,
            password_hash=user.password_hash,
            enabled=user.enabled,
            seeded=seeded,
            created_at=now,
            updated_at=now,
        )
    )
    if user.roles:
        await conn.execute(
            user_roles.insert(), [{"username": user.username, "role": r} for r in user.roles]
        )


async def update(conn: AsyncConnection, username: str, now: float, **values: Any) -> None:
    """Change columns of a user; it is the admin's from now on (no longer seeded)."""
    await conn.execute(
        users.update()
        .where(users.c.username == username)
        .values(**values, seeded=False, updated_at=now)
    )


async def grant(conn: AsyncConnection, username: str, role: str) -> bool:
    """Give ``role``; False when the user held it already. Two admins granting the same
    role at once: the second insert raises ``IntegrityError`` (its caller retries)."""
    held = sa.select(user_roles).where(user_roles.c.username == username, user_roles.c.role == role)
    if (await conn.execute(held)).first() is not None:
        return False
    await conn.execute(user_roles.insert().values(username=username, role=role))
    return True


async def revoke(conn: AsyncConnection, username: str, role: str) -> bool:
    """Take ``role`` away; False when the user did not hold it."""
    gone = await conn.execute(
        user_roles.delete().where(user_roles.c.username == username, user_roles.c.role == role)
    )
    return gone.rowcount == 1


async def end_sessions(conn: AsyncConnection, username: str) -> int:
    """Revoke every session of ``username``; how many were live."""
    ended = await conn.execute(
        sessions.update()
        .where(sessions.c.username == username, sessions.c.revoked.is_(False))
        .values(revoked=True)
    )
    return int(ended.rowcount)


def _row(found: Any, roles: dict[str, list[str]]) -> Row:
    user = User(
        username=found["username"],
        subject=found["subject"],
        roles=tuple(sorted(roles.get(found["username"], []))),
        password_hash=found["password_hash"],
        enabled=found["enabled"],
    )
    return Row(user, found["seeded"], found["created_at"], found["updated_at"])
