"""Two store instances on one database are two replicas: they share sessions and one key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.auth.embedded.key_store import KeyStore
from gatehouse.auth.embedded.keys import SigningKey
from gatehouse.auth.embedded.sessions import RefreshOutcome, Session
from gatehouse.auth.embedded.sql_sessions import SqlSessionStore
from gatehouse.auth.tables import signing_keys

from .conftest import migrated_engine

ROUNDS = 20


async def load_or_create_signing_key(engine: AsyncEngine, legacy: Path) -> SigningKey:
    """What one replica signs with after it opened the key ring."""
    ring = await KeyStore(engine, passphrase=None, overlap=360).open_ring(legacy)
    return ring.signer(float("inf")).key


def stores(one: AsyncEngine, two: AsyncEngine) -> tuple[SqlSessionStore, SqlSessionStore]:
    return SqlSessionStore(one, 60, 600), SqlSessionStore(two, 60, 600)


async def test_a_token_rotated_on_one_replica_is_reuse_on_the_other(database_url: str) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        a, b = stores(one, two)
        session, first = await a.start("editor", "gatehouse", "profile")
        second = await b.rotate(first, "gatehouse")
        assert second.outcome is RefreshOutcome.ROTATED
        assert (await a.rotate(first, "gatehouse")).outcome is RefreshOutcome.REUSED
        assert (await b.rotate(second.token, "gatehouse")).outcome is RefreshOutcome.EXPIRED
        assert await a.get_active(session.id) is None
        assert await b.get_active(session.id) is None


async def test_concurrent_refreshes_with_one_token_never_both_succeed(database_url: str) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        a, b = stores(one, two)
        for _ in range(ROUNDS):
            session, token = await a.start("editor", "gatehouse", "profile")
            both = await asyncio.gather(a.rotate(token, "gatehouse"), b.rotate(token, "gatehouse"))
            outcomes = sorted(rotation.outcome.value for rotation in both)
            assert outcomes == ["reused", "rotated"]
            # The winner's new token dies with the session: the race looked like theft.
            winner = next(r for r in both if r.outcome is RefreshOutcome.ROTATED)
            assert (await b.rotate(winner.token, "gatehouse")).outcome is RefreshOutcome.EXPIRED
            assert await a.get_active(session.id) is None


async def test_a_retry_racing_the_first_refresh_on_another_replica_gets_its_answer(
    database_url: str,
) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        a, b = SqlSessionStore(one, 60, 600, grace=5), SqlSessionStore(two, 60, 600, grace=5)

        async def answer(session: Session, token: str) -> bytes:
            return token.encode()

        for _ in range(ROUNDS):
            session, token = await a.start("editor", "gatehouse", "profile")
            both = await asyncio.gather(
                a.rotate(token, "gatehouse", answer), b.rotate(token, "gatehouse", answer)
            )
            assert sorted(r.outcome.value for r in both) == ["grace", "rotated"]
            winner = next(r for r in both if r.outcome is RefreshOutcome.ROTATED)
            assert both[0].sealed == both[1].sealed == winner.token.encode()
            assert await a.get_active(session.id) is not None  # a retry is not theft


async def test_replicas_starting_together_install_one_key(
    database_url: str, tmp_path: Path
) -> None:
    async with migrated_engine(database_url) as one, migrated_engine(database_url) as two:
        for _ in range(3):
            keys = await asyncio.gather(
                load_or_create_signing_key(one, tmp_path / "a" / "issuer-key.pem"),
                load_or_create_signing_key(two, tmp_path / "b" / "issuer-key.pem"),
            )
            assert keys[0].kid == keys[1].kid
            async with one.begin() as conn:
                assert (
                    await conn.execute(sa.select(sa.func.count()).select_from(signing_keys))
                ).scalar_one() == 1
                await conn.execute(signing_keys.delete())


async def test_the_key_file_of_an_earlier_version_is_imported_once(
    database_url: str, tmp_path: Path
) -> None:
    legacy = SigningKey.load_or_create(tmp_path / "issuer-key.pem")
    other = SigningKey.load_or_create(tmp_path / "other" / "issuer-key.pem")
    async with migrated_engine(database_url) as engine:
        imported = await load_or_create_signing_key(engine, tmp_path / "issuer-key.pem")
        later = await load_or_create_signing_key(engine, tmp_path / "other" / "issuer-key.pem")
    assert imported.kid == legacy.kid
    assert later.kid == legacy.kid != other.kid
