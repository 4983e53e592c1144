"""The admin API of the embedded issuer: users, roles, the audit trail, ``gatehouse.user.*``.

``endpoints`` (``/auth/admin/...``), ``service`` (each change one transaction with its
audit row, event and revocation items), ``events`` (the event types and the relay).
With Keycloak (``KEYCLOAK_URL``) the routes answer 501: users live in Keycloak, whose
own admin API and admin events do this job (docs: services/auth/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack

from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.admin.events import AuditRelay
from gatehouse.auth.admin.service import UserAdmin
from gatehouse.auth.embedded.revocations import RevocationLog
from gatehouse.auth.embedded.users import UserDirectory
from gatehouse.common.events import EventBus

log = logging.getLogger("gatehouse.auth.admin")


async def open_admin(
    stack: AsyncExitStack,
    engine: AsyncEngine,
    users: UserDirectory,
    revocations: RevocationLog,
    bus: EventBus | None,
) -> UserAdmin:
    """The admin service, and its relay on ``bus`` (stopped by ``stack``)."""
    if bus is None:
        log.warning(
            "no event bus (AMQP_URL is unset): gatehouse.user.* events wait in the "
            "auth_audit table until a replica with a bus publishes them"
        )
        return UserAdmin(engine, users, revocations)
    relay = AuditRelay(engine, bus)
    task = asyncio.create_task(relay.run(), name="gatehouse-auth-relay")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    return UserAdmin(engine, users, revocations, on_commit=relay.wake)


__all__ = ["UserAdmin", "open_admin"]
