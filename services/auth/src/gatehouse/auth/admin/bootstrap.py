"""``gatehouse auth create-user``: a user made from the operator's shell, not over HTTP.

In production the embedded issuer has no demo identity, so nobody holds the ``admin``
role the admin API asks for: the first administrator is made here, with the service's
own environment (its database), through the same :class:`UserAdmin` as the API, so the
user, its audit row and its ``gatehouse.user.created`` event (the audit row is the
outbox: a running auth replica publishes it) are one transaction. The actor recorded
is the operator's login name, marked as coming from the command line.
"""

from __future__ import annotations

import getpass

from argon2 import PasswordHasher

from gatehouse.auth.admin.schemas import AdminNewUser
from gatehouse.auth.admin.service import Actor, UserAdmin
from gatehouse.auth.database import check_reachable, create_engine
from gatehouse.auth.embedded.revocations import RevocationLog
from gatehouse.auth.embedded.sql_users import Row, SqlUserDirectory
from gatehouse.auth.migrations import SCRIPTS
from gatehouse.auth.settings import AuthSettings
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.identity import ADMIN


def operator() -> Actor:
    """The shell's user as the actor of the audit record."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's numeric user)
        who = "unknown"
    return Actor(
        subject=f"cli:{who}", username=f"cli:{who}", roles=(ADMIN,), user_agent="gatehouse"
    )


async def create_user(settings: AuthSettings, new: AdminNewUser) -> Row:
    """Add ``new`` to the database of ``settings``. Raises ``Conflict`` when the user
    exists, ``ConfigurationError`` naming the variable when Keycloak holds the users or
    the database is unreachable or not migrated."""
    if not settings.embedded:
        raise ConfigurationError(
            "KEYCLOAK_URL", "is set: Keycloak holds the users; create them in its realm"
        )
    engine = create_engine(settings.sqlalchemy_url(), setting=settings.database_setting())
    try:
        await check_reachable(engine, settings.database_setting())
        await SCRIPTS.require_current(engine, settings.database_setting())
        directory = SqlUserDirectory(engine, PasswordHasher(), demo_users=False)
        admin = UserAdmin(engine, directory, RevocationLog(engine, settings.access_token_ttl))
        return await admin.create(operator(), new)
    finally:
        await engine.dispose()
