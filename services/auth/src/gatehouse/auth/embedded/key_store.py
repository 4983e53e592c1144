"""The issuer's signing keys, kept in the auth database so that every replica shares them.

The first replica to start with an empty table installs a key with an insert that
does nothing when the ``current`` slot is taken (``ON CONFLICT DO NOTHING`` on its
unique column), then every replica reads back whichever key won: replicas starting
together end with one key between them. A ``<data_dir>/issuer-key.pem`` left by an
earlier version is what gets installed, so tokens it signed keep verifying.

A rotation (``gatehouse auth rotate-keys``, ``POST /auth/admin/keys/rotate``) inserts a
key that activates later; every replica polls the table's ``kid`` column (a few rows,
no key material) every ``GATEHOUSE_AUTH_KEY_POLL_SECONDS`` and reads and opens only
the keys it does not hold yet. Private keys are sealed with
``GATEHOUSE_AUTH_KEY_PASSPHRASE`` when it is set; a plain key found then is sealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import Gauge
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.embedded.key_ring import KeyRing, RingKey
from gatehouse.auth.embedded.keys import SigningKey, is_sealed
from gatehouse.auth.tables import signing_keys

log = logging.getLogger("gatehouse.auth.embedded.keys")
CURRENT = "current"
KEY_AGE = Gauge(
    "gatehouse_auth_signing_key_age_seconds",
    "Seconds since the embedded issuer's signing key started signing (0 before it has one).",
)
Clock = Callable[[], float]


class KeyStore:
    """The rows of ``auth_signing_keys``, as :class:`RingKey` values."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        passphrase: bytes | None,
        overlap: float,
        clock: Clock = time.time,
    ) -> None:
        self._engine = engine
        self._passphrase = passphrase
        self._overlap = overlap
        self._clock = clock

    async def open_ring(self, legacy_file: Path) -> KeyRing:
        """Every stored key; the first one installed (from ``legacy_file``) when there is none."""
        async with self._engine.connect() as conn:
            empty = not await _kids(conn)
        if empty:
            await self._install(legacy_file)
        ring = KeyRing(await self._load({}), self._overlap)
        await self._seal_plain_keys()
        return ring

    async def rotate(self, activate_in: float) -> RingKey:
        """Add a key that signs from ``activate_in`` seconds on; delete keys long expired."""
        key = await asyncio.to_thread(SigningKey.generate)
        now = self._clock()
        entry = RingKey(key, now, now + activate_in)
        sealed = await asyncio.to_thread(key.pem, self._passphrase)
        async with self._engine.begin() as conn:
            await conn.execute(signing_keys.insert().values(**_row(entry, sealed)))
            ring = KeyRing(await self._rows_as_keys(conn, {}), self._overlap)
            expired = [k.kid for k in ring.expired(now)]
            if expired:
                await conn.execute(signing_keys.delete().where(signing_keys.c.kid.in_(expired)))
        log.info("added signing key %s, signing from %.0f s on", key.kid, activate_in)
        return entry

    async def refresh(self, ring: KeyRing) -> bool:
        """Make ``ring`` match the table when its keys changed; True when they did."""
        async with self._engine.connect() as conn:
            kids = await _kids(conn)
        if kids == ring.kids:
            return False
        known = {k.kid: k for k in ring.entries}
        ring.replace(await self._load(known))
        log.info("signing keys changed: %s", ", ".join(sorted(ring.kids)))
        return True

    async def _load(self, known: dict[str, RingKey]) -> list[RingKey]:
        async with self._engine.connect() as conn:
            return await self._rows_as_keys(conn, known)

    async def _rows_as_keys(
        self, conn: AsyncConnection, known: dict[str, RingKey]
    ) -> list[RingKey]:
        rows = (await conn.execute(sa.select(signing_keys))).mappings().all()
        return [known.get(row["kid"]) or await self._open(row) for row in rows]

    async def _open(self, row: Any) -> RingKey:
        key = await asyncio.to_thread(
            SigningKey.from_pem,
            row["private_pem"].encode(),
            f"signing key {row['kid']}",
            self._passphrase,
        )
        activates_at = row["activates_at"] if row["activates_at"] is not None else row["created_at"]
        return RingKey(key, row["created_at"], activates_at)

    async def _install(self, legacy_file: Path) -> None:
        candidate = await asyncio.to_thread(_read_or_generate, legacy_file)
        now = self._clock()
        sealed = await asyncio.to_thread(candidate.pem, self._passphrase)
        values = {**_row(RingKey(candidate, now, now), sealed), "slot": CURRENT}
        async with self._engine.begin() as conn:
            result = await conn.execute(_insert_if_absent(conn, values))
        if result.rowcount:
            log.info(
                "installed signing key %s (from %s)", candidate.kid, await _origin(legacy_file)
            )

    async def _seal_plain_keys(self) -> None:
        """Seal keys stored before a passphrase was set (or by an earlier version)."""
        if self._passphrase is None:
            return
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(signing_keys))).mappings().all()
            for row in rows:
                if not is_sealed(row["private_pem"].encode()):
                    entry = await self._open(row)
                    sealed = await asyncio.to_thread(entry.key.pem, self._passphrase)
                    update = signing_keys.update().where(signing_keys.c.kid == row["kid"])
                    await conn.execute(update.values(private_pem=sealed.decode()))
                    log.info("sealed signing key %s with the passphrase", row["kid"])


class KeyRingWatcher:
    """Polls the key table so that a key added on another replica is used within seconds."""

    def __init__(self, store: KeyStore, ring: KeyRing, interval: float, clock: Clock = time.time):
        self.store = store
        self.ring = ring
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        KEY_AGE.set_function(self.signer_age)
        self._task = asyncio.create_task(self._poll(), name="signing-key-poll")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def signer_age(self) -> float:
        now = self._clock()
        return max(0.0, now - self.ring.signer(now).activates_at)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.store.refresh(self.ring)
            except Exception as exc:  # the database may be away for a while: keep the ring
                log.warning(
                    "cannot read the signing keys (keeping %d): %r", len(self.ring.kids), exc
                )


async def _kids(conn: AsyncConnection) -> frozenset[str]:
    return frozenset((await conn.execute(sa.select(signing_keys.c.kid))).scalars())


def _row(entry: RingKey, sealed_pem: bytes) -> dict[str, Any]:
    return {
        "kid": entry.kid,
        "private_pem": sealed_pem.decode(),
        "created_at": entry.created_at,
        "activates_at": entry.activates_at,
    }


def _read_or_generate(legacy_file: Path) -> SigningKey:
    if legacy_file.exists():
        return SigningKey.from_pem(legacy_file.read_bytes(), str(legacy_file))
    return SigningKey.generate()


def _insert_if_absent(conn: AsyncConnection, values: dict[str, Any]) -> sa.Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(signing_keys).values(**values).on_conflict_do_nothing()
    return sqlite.insert(signing_keys).values(**values).on_conflict_do_nothing()


async def _origin(legacy_file: Path) -> str:
    exists = await asyncio.to_thread(legacy_file.exists)
    return str(legacy_file) if exists else "newly generated"


def passphrase_bytes(secret: Any) -> bytes | None:
    """The passphrase setting (a ``SecretStr`` or None) as bytes."""
    return secret.get_secret_value().encode() if secret is not None else None


__all__ = ["KEY_AGE", "KeyRingWatcher", "KeyStore", "passphrase_bytes"]
