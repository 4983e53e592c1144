from __future__ import annotations

from gatehouse.auth.lockout import LoginThrottle
from gatehouse.auth.sessions import InMemorySessionStore, RefreshOutcome


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_each_refresh_token_works_once_and_reuse_ends_the_session() -> None:
    store = InMemorySessionStore(idle_ttl=60, max_ttl=600)
    session, first = store.start("editor", "gatehouse", "profile")
    second = store.rotate(first, "gatehouse")
    assert second.outcome is RefreshOutcome.ROTATED
    assert second.token != first
    assert store.rotate(first, "gatehouse").outcome is RefreshOutcome.REUSED
    assert store.rotate(second.token, "gatehouse").outcome is RefreshOutcome.EXPIRED
    assert store.get_active(session.id) is None


def test_a_token_of_another_client_is_unknown() -> None:
    store = InMemorySessionStore(idle_ttl=60, max_ttl=600)
    _, token = store.start("editor", "gatehouse", "profile")
    assert store.rotate(token, "other-client").outcome is RefreshOutcome.UNKNOWN
    assert store.rotate("never-issued", "gatehouse").outcome is RefreshOutcome.UNKNOWN


def test_sessions_expire_when_idle_and_at_their_maximum_age() -> None:
    clock = Clock()
    store = InMemorySessionStore(idle_ttl=60, max_ttl=100, clock=clock)
    _, token = store.start("viewer", "gatehouse", "profile")
    clock.now += 50
    token = store.rotate(token, "gatehouse").token
    clock.now += 50  # idle for 50 s only, but 100 s old
    assert store.rotate(token, "gatehouse").outcome is RefreshOutcome.EXPIRED


def fail(throttle: LoginThrottle, username: str) -> None:
    assert throttle.admit(username) is None
    throttle.finish(username, succeeded=False)


def test_five_failures_lock_a_username_for_a_while() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, lockout_seconds=30, clock=clock)
    for _ in range(4):
        fail(throttle, "Admin")
    assert throttle.retry_after("admin") is None
    fail(throttle, "admin")
    assert throttle.admit("ADMIN") == 30
    clock.now += 31
    assert throttle.admit("admin") is None


def test_a_success_forgets_earlier_failures() -> None:
    throttle = LoginThrottle(max_failures=2, lockout_seconds=30)
    fail(throttle, "viewer")
    assert throttle.admit("viewer") is None
    throttle.finish("viewer", succeeded=True)
    fail(throttle, "viewer")
    assert throttle.retry_after("viewer") is None


def test_guesses_sent_at_once_cannot_pass_the_limit() -> None:
    throttle = LoginThrottle(max_failures=3, lockout_seconds=30)
    admitted = [throttle.admit("editor") for _ in range(10)]
    assert admitted.count(None) == 3
