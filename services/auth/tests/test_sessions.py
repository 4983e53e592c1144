"""The session-store contract, for the in-memory adapter and the SQL adapter on SQLite
and on the real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from gatehouse.auth.embedded.sessions import Clock as ClockFn
from gatehouse.auth.embedded.sessions import (
    InMemorySessionStore,
    RefreshOutcome,
    Session,
    SessionStore,
)
from gatehouse.auth.embedded.sql_sessions import SqlSessionStore

from .conftest import Clock, migrated_engine

StoreFactory = Callable[..., SessionStore]


@pytest.fixture
async def new_store(backend: str) -> AsyncIterator[StoreFactory]:
    """Makes stores of one adapter: ``new_store(idle_ttl=, max_ttl=, clock=)``."""
    if backend == "memory":
        yield InMemorySessionStore
        return
    async with migrated_engine(backend) as engine:

        def make(
            idle_ttl: float, max_ttl: float, clock: ClockFn = time.time, grace: float = 0.0
        ) -> SessionStore:
            return SqlSessionStore(engine, idle_ttl, max_ttl, clock, grace=grace)

        yield make


async def test_each_refresh_token_works_once_and_reuse_ends_the_session(
    new_store: StoreFactory,
) -> None:
    store = new_store(idle_ttl=60, max_ttl=600)
    session, first = await store.start("editor", "gatehouse", "profile")
    second = await store.rotate(first, "gatehouse")
    assert second.outcome is RefreshOutcome.ROTATED
    assert second.token != first
    assert (await store.rotate(first, "gatehouse")).outcome is RefreshOutcome.REUSED
    assert (await store.rotate(second.token, "gatehouse")).outcome is RefreshOutcome.EXPIRED
    assert await store.get_active(session.id) is None


async def test_a_token_of_another_client_is_unknown(new_store: StoreFactory) -> None:
    store = new_store(idle_ttl=60, max_ttl=600)
    _, token = await store.start("editor", "gatehouse", "profile")
    assert (await store.rotate(token, "other-client")).outcome is RefreshOutcome.UNKNOWN
    assert (await store.rotate("never-issued", "gatehouse")).outcome is RefreshOutcome.UNKNOWN


async def test_sessions_expire_when_idle_and_at_their_maximum_age(
    new_store: StoreFactory,
) -> None:
    clock = Clock()
    store = new_store(idle_ttl=60, max_ttl=100, clock=clock)
    _, token = await store.start("viewer", "gatehouse", "profile")
    clock.now += 50
    token = (await store.rotate(token, "gatehouse")).token
    clock.now += 50  # idle for 50 s only, but 100 s old
    assert (await store.rotate(token, "gatehouse")).outcome is RefreshOutcome.EXPIRED


async def test_an_idle_session_expires(new_store: StoreFactory) -> None:
    clock = Clock()
    store = new_store(idle_ttl=60, max_ttl=600, clock=clock)
    session, token = await store.start("viewer", "gatehouse", "profile")
    clock.now += 61
    assert (await store.rotate(token, "gatehouse")).outcome is RefreshOutcome.EXPIRED
    assert await store.get_active(session.id) is None


async def test_only_the_current_token_finds_its_active_session(new_store: StoreFactory) -> None:
    store = new_store(idle_ttl=60, max_ttl=600)
    session, first = await store.start("auditor", "gatehouse", "openid profile")
    second = (await store.rotate(first, "gatehouse")).token
    found = await store.find_active(second)
    assert found is not None
    assert (found.id, found.username, found.scope) == (session.id, "auditor", "openid profile")
    assert await store.find_active(first) is None


async def test_a_revoked_session_is_gone(new_store: StoreFactory) -> None:
    store = new_store(idle_ttl=60, max_ttl=600)
    session, token = await store.start("admin", "gatehouse", "profile")
    await store.revoke(session)
    assert await store.find_active(token) is None
    assert await store.get_active(session.id) is None
    assert (await store.rotate(token, "gatehouse")).outcome is RefreshOutcome.EXPIRED


async def test_long_dead_sessions_are_pruned_and_live_ones_kept(new_store: StoreFactory) -> None:
    clock = Clock()
    store = new_store(idle_ttl=60, max_ttl=600, clock=clock)
    _, dead = await store.start("viewer", "gatehouse", "profile")
    clock.now += 200  # dead for more than one idle period, and past the prune interval
    live, token = await store.start("editor", "gatehouse", "profile")
    assert (await store.rotate(dead, "gatehouse")).outcome is RefreshOutcome.UNKNOWN
    assert await store.get_active(live.id) is not None
    assert (await store.rotate(token, "gatehouse")).outcome is RefreshOutcome.ROTATED


async def answer(session: Session, token: str) -> bytes:
    """A stand-in for the issuer's sealed answer: names the session and the new token."""
    return f"{session.id}:{token}".encode()


async def test_a_retry_within_the_grace_window_gets_the_same_answer(
    new_store: StoreFactory,
) -> None:
    clock = Clock()
    store = new_store(idle_ttl=60, max_ttl=600, clock=clock, grace=5)
    session, first = await store.start("editor", "gatehouse", "profile")
    rotated = await store.rotate(first, "gatehouse", answer)
    clock.now += 4.9
    retried = await store.rotate(first, "gatehouse", answer)
    assert rotated.outcome is RefreshOutcome.ROTATED
    assert retried.outcome is RefreshOutcome.GRACE
    assert retried.sealed == rotated.sealed == f"{session.id}:{rotated.token}".encode()
    assert (await store.rotate(rotated.token, "gatehouse", answer)).outcome is (
        RefreshOutcome.ROTATED
    )


async def test_a_retry_after_the_grace_window_is_reuse(new_store: StoreFactory) -> None:
    clock = Clock()
    store = new_store(idle_ttl=60, max_ttl=600, clock=clock, grace=5)
    session, first = await store.start("editor", "gatehouse", "profile")
    rotated = await store.rotate(first, "gatehouse", answer)
    clock.now += 5
    assert (await store.rotate(first, "gatehouse", answer)).outcome is RefreshOutcome.REUSED
    assert (await store.rotate(rotated.token, "gatehouse")).outcome is RefreshOutcome.EXPIRED
    assert await store.get_active(session.id) is None


async def test_once_the_new_token_is_used_the_old_one_is_reuse_even_in_the_window(
    new_store: StoreFactory,
) -> None:
    store = new_store(idle_ttl=60, max_ttl=600, grace=5)
    session, first = await store.start("editor", "gatehouse", "profile")
    second = await store.rotate(first, "gatehouse", answer)
    await store.rotate(second.token, "gatehouse", answer)
    assert (await store.rotate(first, "gatehouse", answer)).outcome is RefreshOutcome.REUSED
    assert await store.get_active(session.id) is None
