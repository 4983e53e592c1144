"""The embedded issuer's signing keys as the service, the CLI and operators meet them.

``watch_signing_keys`` opens the key ring at start-up and keeps it in step with the
table; ``rotate_signing_keys`` is ``gatehouse auth rotate-keys``: it adds a key that
every replica publishes at once and signs with after the activation delay.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.database import check_reachable, create_engine
from gatehouse.auth.embedded.key_ring import RingKey
from gatehouse.auth.embedded.key_store import KeyRingWatcher, KeyStore, passphrase_bytes
from gatehouse.auth.embedded.keys import KEY_FILE
from gatehouse.auth.migrations import SCRIPTS
from gatehouse.auth.settings import AuthSettings
from gatehouse.common.errors import ConfigurationError


def key_store(settings: AuthSettings, engine: AsyncEngine) -> KeyStore:
    """The signing keys in ``engine``, sealed with ``GATEHOUSE_AUTH_KEY_PASSPHRASE``."""
    return KeyStore(
        engine, passphrase=passphrase_bytes(settings.key_passphrase), overlap=settings.key_overlap()
    )


async def watch_signing_keys(settings: AuthSettings, engine: AsyncEngine) -> KeyRingWatcher:
    """The key ring (the first key installed when there is none), polled from now on."""
    store = key_store(settings, engine)
    ring = await store.open_ring(settings.data_dir / KEY_FILE)
    watcher = KeyRingWatcher(store, ring, settings.key_poll_seconds)
    watcher.start()
    return watcher


async def rotate_signing_keys(settings: AuthSettings, activate_in: float | None = None) -> RingKey:
    """Add a signing key to the database of ``settings`` (``gatehouse auth rotate-keys``).

    It signs ``activate_in`` seconds from now (default
    ``GATEHOUSE_AUTH_KEY_ACTIVATION_SECONDS``) on every replica; the running replicas
    pick it up by themselves. Raises ``ConfigurationError`` naming the variable when
    Keycloak issues the tokens, or the database is unreachable or not migrated.
    """
    if not settings.embedded:
        raise ConfigurationError(
            "KEYCLOAK_URL", "is set: Keycloak signs the tokens; rotate its realm keys there"
        )
    delay = settings.key_activation_seconds if activate_in is None else activate_in
    engine = create_engine(settings.sqlalchemy_url(), setting=settings.database_setting())
    try:
        await check_reachable(engine, settings.database_setting())
        await SCRIPTS.require_current(engine, settings.database_setting())
        store = key_store(settings, engine)
        await store.open_ring(settings.data_dir / KEY_FILE)  # the keys it holds must open
        return await store.rotate(delay)
    finally:
        await engine.dispose()
