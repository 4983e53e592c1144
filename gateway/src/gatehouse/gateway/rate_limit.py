"""Rate limiting: the store port, its in-memory adapter, and the limiter the edge calls.

The algorithm is GCRA (the generic cell rate algorithm, as in redis-cell and
Stripe's limiter): a policy of ``limit`` requests per ``window`` seconds admits
a burst of ``limit`` and then one request every ``window / limit`` seconds. One
number per key (the theoretical arrival time) is the whole state, so the Redis
adapter updates it atomically in one Lua script.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Any, NamedTuple, Protocol

from gatehouse.common.errors import ServiceUnavailable, TooManyRequests
from gatehouse.gateway.config import RateLimitPolicy
from gatehouse.gateway.metrics import RATE_LIMIT_DECISIONS, RATE_LIMIT_STORE_ERRORS

log = logging.getLogger("gatehouse.gateway.rate_limit")


class Decision(NamedTuple):  # a frozen dataclass costs 1 µs more to build, per request
    allowed: bool
    remaining: int
    reset: float  # seconds until the quota is whole again
    retry_after: float  # seconds until one more request is admitted (0 when allowed)


class StoreUnavailable(Exception):
    """The rate-limit store could not answer."""


class RateLimitStore(Protocol):
    name: str

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        """Count one request against ``key``; raise :class:`StoreUnavailable` on failure."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def gcra(tat: float, now: float, limit: int, window: float) -> tuple[Decision, float | None]:
    """One GCRA step: the decision and the new arrival time (None when refused)."""
    interval = window / limit
    new_tat = max(tat, now) + interval
    if new_tat - now > window + 1e-9:
        retry = new_tat - now - window
        return Decision(False, 0, max(tat - now, 0.0), retry), None
    remaining = int((window - (new_tat - now)) / interval + 1e-9)
    return Decision(True, remaining, new_tat - now, 0.0), new_tat


class MemoryRateLimitStore:
    """One process's counters: for the embedded mode and single-replica runs."""

    name = "memory"

    def __init__(self, max_keys: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        now = time.monotonic()
        decision, new_tat = gcra(self._tats.get(key, now), now, limit, window)
        if new_tat is not None:
            self._tats[key] = new_tat
            if len(self._tats) > self._max_keys:
                self._prune(now)
        return decision

    def _prune(self, now: float) -> None:
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._tats.clear()


class RateLimiter:
    """Apply named policies to keys; decide what a store failure means."""

    def __init__(
        self,
        store: RateLimitStore,
        policies: dict[str, RateLimitPolicy],
        *,
        fail_open: bool = True,
        log_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.policies = policies
        self.fail_open = fail_open
        self._log_interval = log_interval
        self._last_log = float("-inf")

    async def check(self, policy_name: str, key: str) -> Decision | None:
        """The decision, or None when the store failed and the limiter fails open."""
        return await self.check_policy(policy_name, self.policies[policy_name], key)

    async def check_policy(
        self, policy_name: str, policy: RateLimitPolicy, key: str
    ) -> Decision | None:
        """Like :meth:`check` for a policy that is not in the named set."""
        try:
            decision = await self.store.hit(f"{policy_name}:{key}", policy.limit, policy.window)
        except StoreUnavailable as exc:
            self._store_failed(policy_name, exc)
            return None
        _decision_counter(policy_name, decision.allowed).inc()
        return decision

    def _store_failed(self, policy_name: str, exc: StoreUnavailable) -> None:
        RATE_LIMIT_STORE_ERRORS.labels(self.store.name).inc()
        RATE_LIMIT_DECISIONS.labels(policy_name, "store_error").inc()
        now = time.monotonic()
        if now - self._last_log >= self._log_interval:
            self._last_log = now
            mode = "open (requests pass)" if self.fail_open else "closed (requests refused)"
            log.error("rate-limit store %s unavailable, failing %s: %s", self.store.name, mode, exc)
        if not self.fail_open:
            raise ServiceUnavailable("rate limiting is unavailable", retry_after=1)
        return


_counters: dict[tuple[str, bool], Any] = {}


def _decision_counter(policy_name: str, allowed: bool) -> Any:
    counter = _counters.get((policy_name, allowed))
    if counter is None:
        outcome = "allowed" if allowed else "limited"
        counter = _counters[(policy_name, allowed)] = RATE_LIMIT_DECISIONS.labels(
            policy_name, outcome
        )
    return counter


@functools.lru_cache(maxsize=256)
def policy_header(name: str, policy: RateLimitPolicy) -> bytes:
    """``RateLimit-Policy`` per draft-ietf-httpapi-ratelimit-headers-11."""
    return f'"{name}";q={policy.limit};w={_seconds(policy.window)}'.encode()


def limit_header(name: str, decision: Decision) -> bytes:
    """``RateLimit`` per draft-11: remaining quota ``r`` and seconds to reset ``t``."""
    return f'"{name}";r={decision.remaining};t={_seconds(decision.reset)}'.encode()


def limit_headers(
    name: str, policy: RateLimitPolicy, decision: Decision
) -> list[tuple[bytes, bytes]]:
    """Both draft-11 fields for a response."""
    return [
        (b"ratelimit-policy", policy_header(name, policy)),
        (b"ratelimit", limit_header(name, decision)),
    ]


def too_many(name: str, policy: RateLimitPolicy, decision: Decision) -> TooManyRequests:
    error = TooManyRequests(
        f"rate limit {name!r} exceeded: {policy.limit} requests per {_seconds(policy.window)}s",
        retry_after=max(1, math.ceil(decision.retry_after)),
    )
    error.headers["RateLimit-Policy"] = policy_header(name, policy).decode()
    error.headers["RateLimit"] = limit_header(name, decision).decode()
    return error


def _seconds(value: float) -> int:
    return max(0, math.ceil(value - 1e-9))
