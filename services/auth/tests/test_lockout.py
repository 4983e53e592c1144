"""The login throttle: per username and address first, a per-username slowdown that
spares addresses without failures, a hard lock only much later; counters shared by
replicas through the auth database (SQLite, and the real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from gatehouse.auth import create_app
from gatehouse.auth.embedded.lockout import (
    INFLIGHT_SECONDS,
    Admission,
    FailureStore,
    InMemoryFailureStore,
    LockoutPolicy,
    LoginThrottle,
    Verdict,
)
from gatehouse.auth.embedded.sql_lockout import SqlFailureStore

from .conftest import DEMO_PASSWORD, FAST_HASHER, Clock, auth_settings, migrated_engine, running

POLICY = LockoutPolicy(
    throttle_failures=5,
    throttle_max=60,
    slowdown_failures=10,
    slowdown_max=30,
    lock_failures=40,
    lock_seconds=300,
    reset_seconds=3600,
)
A, B, C = "203.0.113.5", "198.51.100.7", "192.0.2.44"


@pytest.fixture
async def new_store(backend: str) -> AsyncIterator[Callable[[], FailureStore]]:
    """Makes stores of one adapter; SQL stores made twice are two replicas of one database."""
    if backend == "memory":
        shared = InMemoryFailureStore()
        yield lambda: shared
        return
    async with migrated_engine(backend) as one, migrated_engine(backend) as two:
        engines = iter([one, two])
        yield lambda: SqlFailureStore(next(engines))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(new_store: Callable[[], FailureStore], clock: Clock) -> LoginThrottle:
    return LoginThrottle(new_store(), POLICY, clock)


async def attempt(
    throttle: LoginThrottle, address: str, *, ok: bool = False, user: str = "admin"
) -> Admission:
    admission = await throttle.admit(user, address)
    if admission.admitted:
        await throttle.finish(admission, succeeded=ok)
    return admission


async def test_failures_from_one_address_never_stop_the_owner_elsewhere(
    throttle: LoginThrottle, clock: Clock
) -> None:
    for _ in range(5):
        assert (await attempt(throttle, A)).admitted
    refused = await attempt(throttle, A)
    assert (refused.verdict, refused.retry_after) == (Verdict.THROTTLED, 1)
    for _ in range(30):  # the guesser keeps going, as fast as it is let
        clock.now += 60
        await attempt(throttle, A)
    assert (await attempt(throttle, B, ok=True)).admitted


async def test_the_delay_of_one_address_doubles_up_to_its_maximum(
    throttle: LoginThrottle, clock: Clock
) -> None:
    for _ in range(5):
        await attempt(throttle, A, user="viewer")
    waits = []
    for _ in range(8):
        refused = await attempt(throttle, A, user="viewer")
        waits.append(refused.retry_after)
        clock.now += refused.retry_after
        assert (await attempt(throttle, A, user="viewer")).admitted
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]


async def test_the_username_slowdown_grows_spares_clean_addresses_and_resets(
    throttle: LoginThrottle, clock: Clock
) -> None:
    addresses = [f"198.51.100.{i}" for i in range(1, 11)]
    for address in addresses:  # one failure each: no address reaches its own limit
        assert (await attempt(throttle, address, user="editor")).admitted
    waits = []
    for address in addresses[:4]:  # each of them has failed, so each is slowed down
        refused = await attempt(throttle, address, user="editor")
        waits.append(refused.retry_after)
        clock.now += refused.retry_after
        assert (await attempt(throttle, address, user="editor")).admitted
    assert waits == [1, 2, 4, 8]
    # An address that never failed for "editor" is not slowed down: the owner logs in...
    assert (await attempt(throttle, C, ok=True, user="editor")).admitted
    # ...and that success clears the slowdown for everyone.
    assert (await attempt(throttle, addresses[0], user="editor")).admitted
    assert (await attempt(throttle, addresses[1], user="editor")).admitted


async def test_a_hard_lock_only_after_many_failures_then_it_ends(
    throttle: LoginThrottle, clock: Clock
) -> None:
    before = REGISTRY.get_sample_value("gatehouse_auth_lockouts_total") or 0
    for i in range(POLICY.lock_failures):  # a botnet: every address fails once
        assert (await attempt(throttle, f"10.1.{i // 200}.{i % 200}", user="auditor")).admitted
        clock.now += POLICY.slowdown_max
    locked = await attempt(throttle, C, ok=True, user="auditor")
    assert locked.verdict is Verdict.LOCKED
    assert locked.retry_after == POLICY.lock_seconds - POLICY.slowdown_max
    assert REGISTRY.get_sample_value("gatehouse_auth_lockouts_total") == before + 1
    clock.now += POLICY.lock_seconds
    assert (await attempt(throttle, C, ok=True, user="auditor")).admitted


async def test_usernames_differ_only_in_case_and_ipv6_hosts_by_their_64(
    throttle: LoginThrottle,
) -> None:
    for i in range(5):
        await attempt(throttle, f"2001:db8:1:2::{i + 1}", user=("Nobody", "NOBODY")[i % 2])
    assert (await attempt(throttle, "2001:db8:1:2::99", user="nobody")).verdict is (
        Verdict.THROTTLED
    )
    assert (await attempt(throttle, "2001:db8:1:3::1", user="nobody")).admitted


async def test_counters_are_forgotten_after_a_quiet_while(
    throttle: LoginThrottle, clock: Clock
) -> None:
    for _ in range(5):
        await attempt(throttle, A)
    clock.now += POLICY.reset_seconds
    assert (await attempt(throttle, A)).admitted


async def test_guesses_sent_at_once_to_two_replicas_cannot_pass_the_limit(
    new_store: Callable[[], FailureStore], clock: Clock
) -> None:
    one, two = LoginThrottle(new_store(), POLICY, clock), LoginThrottle(new_store(), POLICY, clock)
    # Wrong guesses, all sent at once: the ones beyond the limit wait for those in flight
    # (which might have succeeded), see them fail, and are refused.
    admissions = await asyncio.gather(*(attempt(replica, A) for replica in (one, two) * 10))
    assert [a.admitted for a in admissions].count(True) == 5
    assert {a.verdict for a in admissions if not a.admitted} == {Verdict.THROTTLED}
    assert (await two.admit("admin", B)).admitted  # another address is still let in


async def test_replicas_share_the_counters(
    new_store: Callable[[], FailureStore], clock: Clock
) -> None:
    one, two = LoginThrottle(new_store(), POLICY, clock), LoginThrottle(new_store(), POLICY, clock)
    for replica in (one, two, one, two, one):
        assert (await attempt(replica, A)).admitted
    assert (await attempt(two, A)).verdict is Verdict.THROTTLED
    assert (await attempt(one, A)).verdict is Verdict.THROTTLED


async def test_attempts_of_a_replica_that_died_in_flight_stop_counting(
    throttle: LoginThrottle, clock: Clock
) -> None:
    for _ in range(5):  # admitted, never finished: their replica died
        assert (await throttle.admit("admin", A)).admitted
    clock.now += INFLIGHT_SECONDS
    assert (await attempt(throttle, A, ok=True)).admitted


@pytest.mark.services
async def test_correct_logins_at_once_from_one_address_on_two_replicas_all_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    """A service account or an office behind one NAT logs one user in from many workers:
    attempts still in flight are not failures, and a compare-and-set conflict is retried,
    so not one right password is answered 429 (issue #11; it was 40 of 180)."""
    one, two = (
        create_app(
            auth_settings(tmp_path / name, GATEHOUSE_AUTH_DATABASE_URL=postgres_url),
            password_hasher=FAST_HASHER,
        )
        for name in ("one", "two")
    )
    async with running(one) as a, running(two) as b:

        async def worker(client: httpx.AsyncClient) -> list[int]:
            body = {"username": "viewer", "password": DEMO_PASSWORD}
            return [(await client.post("/auth/token", json=body)).status_code for _ in range(30)]

        codes = [c for run in await asyncio.gather(*(worker(c) for c in (a, b) * 3)) for c in run]
    assert {code: codes.count(code) for code in set(codes)} == {200: 180}
