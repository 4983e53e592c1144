"""The Redis adapter of the rate-limit store: one atomic Lua script per request.

The script reads the clock of the Redis server (``TIME``), so gateway replicas
with skewed clocks still share one notion of "now", and the read-modify-write
of the GCRA state cannot interleave with another replica's.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gatehouse.gateway.rate_limit import Decision, StoreUnavailable

# KEYS[1] the counter; ARGV[1] limit; ARGV[2] window in milliseconds.
# Returns {allowed, remaining, reset_ms, retry_after_ms}; fractions travel as strings
# because Redis truncates Lua numbers to integers.
GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
if new_tat - now > window + 0.000001 then
  return {0, 0, tostring(tat - now), tostring(new_tat - now - window)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now))
local remaining = math.floor((window - (new_tat - now)) / interval + 0.000001)
return {1, remaining, tostring(new_tat - now), '0'}
"""


class RedisRateLimitStore:
    """Counters shared by every gateway replica that uses the same Redis and prefix."""

    name = "redis"

    def __init__(self, url: str, prefix: str = "gatehouse:rl:", timeout: float = 0.5) -> None:
        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._prefix = prefix
        self._script = self._redis.register_script(GCRA_LUA)

    async def hit(self, key: str, limit: int, window: float) -> Decision:
        try:
            raw = await self._script(keys=[self._prefix + key], args=[limit, window * 1000])
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(repr(exc)) from exc
        allowed, remaining, reset_ms, retry_ms = raw
        return Decision(
            allowed=bool(allowed),
            remaining=int(remaining),
            reset=float(reset_ms) / 1000,
            retry_after=float(retry_ms) / 1000,
        )

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(repr(exc)) from exc

    async def close(self) -> None:
        await self._redis.aclose()
