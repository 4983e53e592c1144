"""The issuer's signing key, kept in the auth database so that every replica signs with it.

The first replica to start with an empty table installs a key with an insert that
does nothing when the ``current`` slot is taken (``ON CONFLICT DO NOTHING`` on its
unique column), then every replica reads back whichever key won: replicas starting
together end with one key between them. A ``<data_dir>/issuer-key.pem`` left by an
earlier version is what gets installed, so tokens it signed keep verifying.

The private key is stored as unencrypted PEM: encryption at rest is not done yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gatehouse.auth.embedded.keys import SigningKey
from gatehouse.auth.tables import signing_keys

log = logging.getLogger("gatehouse.auth.embedded.keys")
CURRENT = "current"


async def load_or_create_signing_key(engine: AsyncEngine, legacy_file: Path) -> SigningKey:
    """The current signing key; installed from ``legacy_file`` or generated when absent."""
    async with engine.connect() as conn:
        pem = await _current_pem(conn)
    if pem is not None:
        return SigningKey.from_pem(pem.encode(), "the current signing key")
    candidate = await _candidate(legacy_file)
    async with engine.begin() as conn:
        await conn.execute(_insert_if_absent(conn, candidate))
        pem = await _current_pem(conn)
    if pem is None:
        raise RuntimeError("no current signing key after installing one")
    key = SigningKey.from_pem(pem.encode(), "the current signing key")
    if key.kid == candidate.kid:
        log.info("installed signing key %s (from %s)", key.kid, await _origin(legacy_file))
    return key


async def _current_pem(conn: AsyncConnection) -> str | None:
    query = sa.select(signing_keys.c.private_pem).where(signing_keys.c.slot == CURRENT)
    pem: str | None = (await conn.execute(query)).scalar_one_or_none()
    return pem


async def _candidate(legacy_file: Path) -> SigningKey:
    return await asyncio.to_thread(_read_or_generate, legacy_file)


def _read_or_generate(legacy_file: Path) -> SigningKey:
    if legacy_file.exists():
        return SigningKey.from_pem(legacy_file.read_bytes(), str(legacy_file))
    return SigningKey.generate()


def _insert_if_absent(conn: AsyncConnection, key: SigningKey) -> sa.Insert:
    values = {
        "kid": key.kid,
        "private_pem": key.pem().decode(),
        "created_at": time.time(),
        "slot": CURRENT,
    }
    if conn.dialect.name == "postgresql":
        return postgresql.insert(signing_keys).values(**values).on_conflict_do_nothing()
    return sqlite.insert(signing_keys).values(**values).on_conflict_do_nothing()


async def _origin(legacy_file: Path) -> str:
    exists = await asyncio.to_thread(legacy_file.exists)
    return str(legacy_file) if exists else "newly generated"
