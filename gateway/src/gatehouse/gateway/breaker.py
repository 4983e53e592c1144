"""A circuit breaker per upstream: pybreaker's state machine, driven from asyncio.

pybreaker only counts what happens inside ``call()``; decorating an ``async def``
returns a coroutine at once, so nothing is ever counted (DESIGN §3). Here the
awaited call runs outside pybreaker and its *outcome* is then replayed through
``CircuitBreaker.call`` with a synchronous function that returns or raises, so
pybreaker's counting, thresholds and listeners see every awaited call. Admission
(open -> reject at once, half-open -> exactly one trial) is decided before the
await, so an open breaker never touches the upstream.
"""

from __future__ import annotations

import contextlib
import math
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


class _StateGauge(pybreaker.CircuitBreakerListener):
    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        BREAKER_STATE.labels(cb.name).set(_STATE_VALUES.get(new_state.name, 0))


class AsyncBreaker:
    """Guard awaited calls to one upstream; ``is_failure`` classifies results."""

    def __init__(self, name: str, *, fail_max: int, reset_timeout: float) -> None:
        self._cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            name=name,
            listeners=[_StateGauge()],
            throw_new_error_on_trip=False,
        )
        self._trial_running = False
        BREAKER_STATE.labels(name).set(0)

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return str(self._cb.current_state)

    async def call(
        self,
        func: Callable[[], Awaitable[T]],
        is_failure: Callable[[T], bool] = lambda _: False,
        counts: Callable[[BaseException], bool] = lambda _: True,
    ) -> T:
        """Await ``func()`` unless the circuit is open; count its outcome.

        ``is_failure(result)`` marks a returned value as a failure (a 5xx);
        ``counts(exc)`` says whether a raised exception is the upstream's fault.
        """
        trial = self._admit()
        try:
            result = await func()
        except BaseException as exc:
            self._record(failed=counts(exc) and not _is_cancel(exc))
            raise
        else:
            self._record(failed=is_failure(result))
            return result
        finally:
            if trial:
                self._trial_running = False

    def _admit(self) -> bool:
        state = self._cb.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        if state == pybreaker.STATE_OPEN:
            remaining = self._remaining_open()
            if remaining > 0:
                raise BreakerOpen(f"upstream {self._cb.name} is unavailable", retry_after=remaining)
            self._cb.half_open()
        if self._trial_running:
            raise BreakerOpen(f"upstream {self._cb.name} is being probed", retry_after=1)
        self._trial_running = True
        return True

    def _remaining_open(self) -> int:
        opened_at = self._cb._state_storage.opened_at  # pybreaker has no public accessor
        if opened_at is None:
            return 0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        left = self._cb.reset_timeout - elapsed
        return math.ceil(left) if left > 0 else 0

    def _record(self, *, failed: bool) -> None:
        # _Failure: counted and re-raised by pybreaker; CircuitBreakerError: already open
        with contextlib.suppress(_Failure, pybreaker.CircuitBreakerError):
            self._cb.call(_raise if failed else _succeed)


def _raise() -> None:
    raise _Failure


def _succeed() -> None:
    return None


def _is_cancel(exc: BaseException) -> bool:
    return not isinstance(exc, Exception)
