"""Signing keys in the auth database: sealed at rest, rotated, seen by every replica."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.embedded.key_store import KeyRingWatcher, KeyStore
from gatehouse.auth.embedded.keys import SigningKey
from gatehouse.auth.tables import signing_keys
from gatehouse.common.errors import ConfigurationError

from .conftest import migrated_engine

PASSPHRASE = b"a passphrase of the key store test"
OVERLAP = 360.0


def store(
    engine: AsyncEngine, passphrase: bytes | None = PASSPHRASE, overlap: float = OVERLAP
) -> KeyStore:
    return KeyStore(engine, passphrase=passphrase, overlap=overlap)


async def stored_pems(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(signing_keys.c.private_pem))).scalars())


async def test_keys_are_sealed_at_rest(database_url: str, tmp_path: Path) -> None:
    async with migrated_engine(database_url) as engine:
        ring = await store(engine).open_ring(tmp_path / "none.pem")
        await store(engine).rotate(60)
        pems = await stored_pems(engine)
        assert len(pems) == 2
        assert all(p.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for p in pems)
        with pytest.raises(ConfigurationError, match="GATEHOUSE_AUTH_KEY_PASSPHRASE"):
            await store(engine, None).open_ring(tmp_path / "none.pem")
        with pytest.raises(ConfigurationError, match="GATEHOUSE_AUTH_KEY_PASSPHRASE"):
            await store(engine, b"not the passphrase").open_ring(tmp_path / "none.pem")
        reopened = await store(engine).open_ring(tmp_path / "none.pem")
        assert len(reopened.kids) == 2
        assert ring.kids < reopened.kids


async def test_a_plain_key_of_before_is_sealed_once_a_passphrase_is_set(
    database_url: str, tmp_path: Path
) -> None:
    legacy = SigningKey.load_or_create(tmp_path / "issuer-key.pem")
    async with migrated_engine(database_url) as engine:
        plain = await store(engine, None).open_ring(tmp_path / "issuer-key.pem")
        assert (await stored_pems(engine))[0].startswith("-----BEGIN PRIVATE KEY-----")
        sealed = await store(engine).open_ring(tmp_path / "issuer-key.pem")
        assert (await stored_pems(engine))[0].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert plain.kids == sealed.kids == {legacy.kid}


async def test_a_key_rotated_on_one_replica_reaches_the_other(
    database_url: str, tmp_path: Path
) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        ring_one = await store(one).open_ring(tmp_path / "none.pem")
        ring_two = await store(two).open_ring(tmp_path / "none.pem")
        first = ring_two.signer(time.time())
        added = await store(one).rotate(30)
        assert await store(two).refresh(ring_two)
        assert not await store(two).refresh(ring_two)  # nothing new: no key read
        now = time.time()
        assert ring_two.signer(now).kid == first.kid  # published, not signing yet
        assert [k.kid for k in ring_two.published(now)] == [first.kid, added.kid]
        assert ring_two.signer(added.activates_at).kid == added.kid
        assert ring_one.kids == {first.kid}  # until its own poll


async def test_a_rotation_deletes_keys_no_token_can_need(database_url: str, tmp_path: Path) -> None:
    async with migrated_engine(database_url) as engine:
        keys = store(engine, overlap=0.2)
        ring = await keys.open_ring(tmp_path / "none.pem")
        (first,) = ring.kids
        second = await keys.rotate(0)
        await asyncio.sleep(0.3)  # the first key's tokens have all expired now
        third = await keys.rotate(0)
        async with engine.connect() as conn:
            kids = set((await conn.execute(sa.select(signing_keys.c.kid))).scalars())
    assert first not in kids
    assert kids == {second.kid, third.kid}


async def test_the_watcher_picks_up_a_new_key_within_its_poll(
    database_url: str, tmp_path: Path
) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        ring = await store(one).open_ring(tmp_path / "none.pem")
        watcher = KeyRingWatcher(store(one), ring, interval=0.05)
        watcher.start()
        try:
            added = await store(two).rotate(0)
            for _ in range(100):
                if added.kid in ring.kids:
                    break
                await asyncio.sleep(0.05)
            assert ring.signer(time.time()).kid == added.kid
            age = REGISTRY.get_sample_value("gatehouse_auth_signing_key_age_seconds")
            assert age is not None
            assert 0 <= age < 10
        finally:
            await watcher.close()
