"""Failed-login lockout: after N failures in a row a username is locked for a while.

Counted per username whether or not the user exists, so a lockout says nothing
about which usernames are real.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_TRACKED = 100_000


@dataclass(slots=True)
class _Failures:
    count: int
    locked_until: float
    last: float


class LoginThrottle:
    def __init__(
        self, max_failures: int, lockout_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._max = max_failures
        self._lockout = lockout_seconds
        self._clock = clock
        self._failures: dict[str, _Failures] = {}

    def retry_after(self, username: str) -> int | None:
        """Seconds until ``username`` may try again, or None when it is not locked."""
        entry = self._failures.get(username.lower())
        remaining = entry.locked_until - self._clock() if entry else 0
        return max(1, int(remaining + 0.999)) if remaining > 0 else None

    def failed(self, username: str) -> None:
        now = self._clock()
        if len(self._failures) >= MAX_TRACKED:
            self._forget_old(now)
        entry = self._failures.setdefault(username.lower(), _Failures(0, 0.0, now))
        if entry.locked_until and entry.locked_until <= now:
            entry.count, entry.locked_until = 0, 0.0  # the lockout ran out: start over
        entry.count += 1
        entry.last = now
        if entry.count >= self._max:
            entry.locked_until = now + self._lockout

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.lower(), None)

    def _forget_old(self, now: float) -> None:
        stale = [k for k, v in self._failures.items() if v.last < now - self._lockout]
        for key in stale or list(self._failures)[: MAX_TRACKED // 10]:
            del self._failures[key]
