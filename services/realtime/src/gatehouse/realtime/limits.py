"""Per-connection inbound rate limit: a token bucket (no shared store needed)."""

from __future__ import annotations

import time


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` a second; ``take`` spends one if it can."""

    __slots__ = ("_last", "_rate", "_size", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._size = rate, float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._size, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
