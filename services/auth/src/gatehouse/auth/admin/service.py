"""What the admin API does to users, each change one transaction.

A change, its audit row (holding its ``gatehouse.user.*`` event: the outbox) and the
revocation items it causes commit together or not at all:

* disabling a user, or setting their password, ends their sessions (no refresh) and
  revokes their subject, so the gateway refuses every access token they hold within
  its poll interval; a disabled user cannot log in;
* taking a role away revokes the subject but keeps the sessions: tokens carrying the
  old roles are refused, and a refresh gets a token with the roles they hold now;
* creating, enabling and granting revoke nothing.

An admin cannot disable themselves or take their own ``admin`` role (409): the last
admin locking everyone out takes a database edit to undo.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.admin import events
from gatehouse.auth.admin.schemas import AdminNewUser, AdminUserPatch
from gatehouse.auth.embedded import sql_users
from gatehouse.auth.embedded.revocations import SUBJECT, RevocationLog
from gatehouse.auth.embedded.sql_users import Row
from gatehouse.auth.embedded.users import User, UserDirectory, subject_for
from gatehouse.auth.tables import audit
from gatehouse.common.errors import Conflict, NotFound
from gatehouse.common.identity import ADMIN


@dataclass(frozen=True, slots=True)
class Actor:
    """The admin making a change, and the request they made it with."""

    subject: str
    username: str
    roles: tuple[str, ...]
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


def user_data(row: Row) -> dict[str, Any]:
    """The user as ``GET /auth/admin/users/{username}`` answers it."""
    user = row.user
    return {
        "username": user.username,
        "subject": user.subject,
        "roles": list(user.roles),
        "enabled": user.enabled,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class UserAdmin:
    def __init__(
        self,
        engine: AsyncEngine,
        directory: UserDirectory,
        revocations: RevocationLog,
        *,
        on_commit: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self.directory = directory
        self._revocations = revocations
        self._on_commit = on_commit  # wakes the relay
        self._clock = clock

    async def page(self, page: int, per_page: int) -> tuple[list[Row], int]:
        async with self._engine.connect() as conn:
            return await sql_users.page(conn, (page - 1) * per_page, per_page)

    async def get(self, username: str) -> Row:
        async with self._engine.connect() as conn:
            return _found(await sql_users.load(conn, username), username)

    async def create(self, actor: Actor, new: AdminNewUser) -> Row:
        username = new.username.lower()
        roles = tuple(sorted({str(role) for role in new.roles}))
        digest = await self.directory.hash(new.password)
        user = User(username, subject_for(username), roles, digest, new.enabled)
        try:
            async with self._engine.begin() as conn:
                await sql_users.insert(conn, user, seeded=False, now=self._clock())
                row = _found(await sql_users.load(conn, username), username)
                await self._audit(conn, actor, events.USER_CREATED, row)
        except IntegrityError:
            raise Conflict(f"user {username} exists already") from None
        self._on_commit()
        return row

    async def update(self, actor: Actor, username: str, patch: AdminUserPatch) -> Row:
        username = username.lower()
        if patch.enabled is False and username == actor.username:
            raise Conflict("an admin cannot disable themselves")
        digest = await self.directory.hash(patch.password) if patch.password else None
        async with self._engine.begin() as conn:
            before = _found(await sql_users.load(conn, username), username)
            changed = _changes(before, patch.enabled, digest)
            if not changed:
                return before
            await sql_users.update(conn, username, self._clock(), **changed)
            if changed.get("enabled") is False or "password_hash" in changed:
                await sql_users.end_sessions(conn, username)
                await self._revocations.record(conn, SUBJECT, before.user.subject)
            row = _found(await sql_users.load(conn, username), username)
            names = sorted("password" if key == "password_hash" else key for key in changed)
            await self._audit(conn, actor, events.USER_UPDATED, row, changed=names)
        self._on_commit()
        return row

    async def grant(self, actor: Actor, username: str, role: str) -> Row:
        try:
            return await self._grant(actor, username.lower(), role)
        except IntegrityError:  # another admin granted it at the same moment
            return await self.get(username)

    async def _grant(self, actor: Actor, username: str, role: str) -> Row:
        async with self._engine.begin() as conn:
            before = _found(await sql_users.load(conn, username), username)
            if not await sql_users.grant(conn, username, role):
                return before
            await sql_users.update(conn, username, self._clock())
            row = _found(await sql_users.load(conn, username), username)
            await self._audit(conn, actor, events.USER_ROLE_GRANTED, row, role=role)
        self._on_commit()
        return row

    async def revoke(self, actor: Actor, username: str, role: str) -> Row:
        username = username.lower()
        if role == ADMIN and username == actor.username:
            raise Conflict("an admin cannot take their own admin role")
        async with self._engine.begin() as conn:
            before = _found(await sql_users.load(conn, username), username)
            if not await sql_users.revoke(conn, username, role):
                raise NotFound(f"user {username} does not hold the role {role}")
            await sql_users.update(conn, username, self._clock())
            await self._revocations.record(conn, SUBJECT, before.user.subject)
            row = _found(await sql_users.load(conn, username), username)
            await self._audit(conn, actor, events.USER_ROLE_REVOKED, row, role=role)
        self._on_commit()
        return row

    async def audit_page(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        """Audit records, newest first, and how many there are."""
        query = sa.select(audit).order_by(audit.c.id.desc())
        async with self._engine.connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(audit))).scalar_one()
            found = await conn.execute(query.offset((page - 1) * per_page).limit(per_page))
            return [_record(r) for r in found.mappings().all()], int(total)

    async def _audit(
        self, conn: AsyncConnection, actor: Actor, kind: str, row: Row, **change: Any
    ) -> None:
        """The audit row of a change, holding its event (the outbox), in its transaction."""
        data = {**user_data(row), **change}
        event = events.user_event(kind, row.user.subject, {**data, "actor": _actor(actor)})
        await conn.execute(
            audit.insert().values(
                event_id=event.id,
                at=self._clock(),
                actor=actor.username,
                actor_subject=actor.subject,
                actor_roles=" ".join(sorted(actor.roles)),
                action=kind.removeprefix("gatehouse."),
                resource=f"/auth/admin/users/{row.user.username}",
                data=json.dumps(data),
                ip=actor.ip[:64],
                user_agent=actor.user_agent[:512],
                request_id=actor.request_id[:128] or str(uuid.uuid4()),
                event=event.to_json().decode(),
            )
        )


def _found(row: Row | None, username: str) -> Row:
    if row is None:
        raise NotFound(f"no user {username.lower()}")
    return row


def _changes(before: Row, enabled: bool | None, digest: str | None) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    if enabled is not None and enabled != before.user.enabled:
        changed["enabled"] = enabled
    if digest is not None:
        changed["password_hash"] = digest
    return changed


def _actor(actor: Actor) -> dict[str, str]:
    return {"subject": actor.subject, "username": actor.username}


def _record(row: Any) -> dict[str, Any]:
    return {
        "id": row["event_id"],
        "at": row["at"],
        "actor": row["actor"],
        "actor_subject": row["actor_subject"],
        "actor_roles": row["actor_roles"].split(),
        "action": row["action"],
        "resource": row["resource"],
        "data": json.loads(row["data"]),
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "request_id": row["request_id"],
        "published": row["published_at"] is not None,
    }
