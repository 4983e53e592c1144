"""The sealed answer kept for a retried refresh opens only with the token presented."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from gatehouse.auth.embedded.refresh_grace import seal, unseal
from gatehouse.auth.embedded.sql_sessions import SqlSessionStore
from gatehouse.auth.tables import retired_tokens

from .conftest import migrated_engine


def test_only_the_presented_token_opens_the_answer() -> None:
    token, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    sealed = seal(token, b'{"access_token": "eyJ..."}')
    assert b"access_token" not in sealed
    assert unseal(token, sealed) == b'{"access_token": "eyJ..."}'
    assert unseal(other, sealed) is None
    assert unseal(token, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert unseal(token, b"short") is None


async def test_the_database_holds_no_token_in_clear(database_url: str) -> None:
    async with migrated_engine(database_url) as engine:
        store = SqlSessionStore(engine, 60, 600, grace=5)
        _, first = await store.start("viewer", "gatehouse", "profile")

        async def answer(session: object, token: str) -> bytes:
            return seal(first, f'{{"refresh_token": "{token}"}}'.encode())

        rotated = await store.rotate(first, "gatehouse", answer)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(retired_tokens))).mappings().all()
    stored = repr([dict(row) for row in rows]).encode()
    assert len(rows) == 1
    assert first.encode() not in stored
    assert rotated.token.encode() not in stored
    assert unseal(first, rows[0]["sealed"]) == f'{{"refresh_token": "{rotated.token}"}}'.encode()
