"""A circuit breaker per upstream: pybreaker's state machine, driven from asyncio.

pybreaker only counts what happens inside ``call()``; decorating an ``async def``
returns a coroutine at once, so nothing is ever counted (DESIGN §3). Here the
awaited call runs outside pybreaker and its *outcome* is then replayed through
``CircuitBreaker.call`` with a synchronous function that returns or raises, so
pybreaker's counting, thresholds and listeners see every awaited call. Admission
(open -> reject at once, half-open -> one trial) is decided before the await, so
an open breaker never touches the upstream.

What counts is the caller's business (the proxy counts only the upstream's
health: connect errors, timeouts, 502/503/504; never a 500 a request provoked).
The open period starts at ``reset_timeout`` and doubles with each failed trial up
to ``max_reset_timeout``; closing resets it. A half-open trial holds its slot for
at most ``trial_timeout`` seconds: a trial that a slow client keeps busy does not
keep everyone else out.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pybreaker

from gatehouse.common.errors import ServiceUnavailable
from gatehouse.gateway.metrics import BREAKER_STATE

T = TypeVar("T")
_STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class BreakerOpen(ServiceUnavailable):
    """The upstream's circuit is open; the call was not attempted."""


class _Failure(Exception):
    """Carries a counted failure through pybreaker."""


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: AsyncBreaker) -> None:
        self.owner = owner

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        BREAKER_STATE.labels(cb.name).set(_STATE_VALUES.get(new_state.name, 0))
        self.owner.changed(old_state.name if old_state else None, new_state.name)


class AsyncBreaker:
    """Guard awaited calls to one upstream."""

    def __init__(
        self,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
        max_reset_timeout: float | None = None,
        trial_timeout: float = 5.0,
    ) -> None:
        self.base_reset = reset_timeout
        self.max_reset = max(max_reset_timeout or reset_timeout, reset_timeout)
        self.trial_timeout = trial_timeout
        self._cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=[_Listener(self)],
            throw_new_error_on_trip=False,
        )
        self._trial_until = 0.0
        BREAKER_STATE.labels(name).set(0)

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return str(self._cb.current_state)

    @property
    def reset_timeout(self) -> float:
        return float(self._cb.reset_timeout)

    def changed(self, old: str | None, new: str) -> None:
        if new == pybreaker.STATE_OPEN and old == pybreaker.STATE_HALF_OPEN:
            self._cb.reset_timeout = min(self._cb.reset_timeout * 2, self.max_reset)
        elif new == pybreaker.STATE_CLOSED:
            self._cb.reset_timeout = self.base_reset
        if new != pybreaker.STATE_HALF_OPEN:
            self._trial_until = 0.0

    def admit(self) -> bool:
        """Raise :class:`BreakerOpen` unless a call may go; True when it is the trial."""
        state = self._cb.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        if state == pybreaker.STATE_OPEN:
            remaining = self._remaining_open()
            if remaining > 0:
                raise BreakerOpen(
                    f"upstream {self._cb.name} is unavailable", retry_after=math.ceil(remaining)
                )
            self._cb.half_open()
        now = time.monotonic()
        if now < self._trial_until:
            raise BreakerOpen(f"upstream {self._cb.name} is being probed", retry_after=1)
        self._trial_until = now + self.trial_timeout
        return True

    def record(self, *, failed: bool) -> None:
        """Count one outcome (a cancelled call should not be recorded at all)."""
        cb = self._cb
        if not failed and cb.current_state == pybreaker.STATE_CLOSED and cb.fail_counter == 0:
            return  # the common case: nothing to reset, skip pybreaker's lock
        # _Failure: counted and re-raised by pybreaker; CircuitBreakerError: already open
        with contextlib.suppress(_Failure, pybreaker.CircuitBreakerError):
            cb.call(_raise if failed else _succeed)

    async def call(
        self,
        func: Callable[[], Awaitable[T]],
        is_failure: Callable[[T], bool] = lambda _: False,
        counts: Callable[[BaseException], bool] = lambda _: True,
    ) -> T:
        """Await ``func()`` unless the circuit is open; count its outcome.

        ``is_failure(result)`` marks a returned value as a failure;
        ``counts(exc)`` says whether a raised exception is the upstream's fault.
        A cancelled call counts for nothing.
        """
        self.admit()
        try:
            result = await func()
        except Exception as exc:
            self.record(failed=counts(exc))
            raise
        self.record(failed=is_failure(result))
        return result

    def _remaining_open(self) -> float:
        opened_at = self._cb._state_storage.opened_at  # pybreaker has no public accessor
        if opened_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(self._cb.reset_timeout - elapsed, 0.0)


def _raise() -> None:
    raise _Failure


def _succeed() -> None:
    return None
