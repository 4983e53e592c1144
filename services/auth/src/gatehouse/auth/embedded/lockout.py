"""Failed-login lockout: after N failures in a row a username is locked for a while.

Counted per username whether or not the user exists, so a lockout says nothing
about which usernames are real. Attempts still being checked count as failures
until they finish, so N guesses sent at once cannot slip past the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gatehouse.auth import metrics

MAX_TRACKED = 100_000


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    in_flight: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    def __init__(
        self, max_failures: int, lockout_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._max = max_failures
        self._lockout = lockout_seconds
        self._clock = clock
        self._attempts: dict[str, _Attempts] = {}

    def retry_after(self, username: str) -> int | None:
        """Seconds until ``username`` may try again, or None when it is not locked."""
        entry = self._attempts.get(username.lower())
        remaining = entry.locked_until - self._clock() if entry else 0
        return max(1, int(remaining + 0.999)) if remaining > 0 else None

    def admit(self, username: str) -> int | None:
        """Start an attempt; returns seconds to wait instead when it may not start."""
        if (wait := self.retry_after(username)) is not None:
            return wait
        entry = self._entry(username)
        if entry.locked_until:  # a lockout that ran out: start over
            entry.failures, entry.locked_until = 0, 0.0
        if entry.failures + entry.in_flight >= self._max:
            return 1  # the attempts already under way may still lock the account
        entry.in_flight += 1
        return None

    def finish(self, username: str, *, succeeded: bool) -> None:
        """End an attempt that :meth:`admit` started."""
        entry = self._entry(username)
        entry.in_flight = max(0, entry.in_flight - 1)
        if succeeded:
            entry.failures, entry.locked_until = 0, 0.0
        else:
            self._failed(entry)
        if not entry.failures and not entry.in_flight:
            self._attempts.pop(username.lower(), None)

    def _failed(self, entry: _Attempts) -> None:
        now = self._clock()
        entry.failures += 1
        entry.last = now
        if entry.failures == self._max:
            metrics.LOCKOUTS.inc()
        if entry.failures >= self._max:
            entry.locked_until = now + self._lockout

    def _entry(self, username: str) -> _Attempts:
        key = username.lower()
        if key not in self._attempts and len(self._attempts) >= MAX_TRACKED:
            self._forget_old()
        return self._attempts.setdefault(key, _Attempts(last=self._clock()))

    def _forget_old(self) -> None:
        cutoff = self._clock() - self._lockout
        stale = [k for k, v in self._attempts.items() if v.last < cutoff and not v.in_flight]
        for key in stale or list(self._attempts)[: MAX_TRACKED // 10]:
            del self._attempts[key]
