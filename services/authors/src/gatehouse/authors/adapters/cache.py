"""The layered read cache of resources by id: a per-process TTL LRU in front of Redis.

Entries are the resource snapshots the API returns, each with its ``version``. A
write never lets an older version replace a newer one (``put`` and ``changed``
are "set if newer", in Redis with one Lua script), and a deletion leaves a
tombstone, so a reader that raced a writer cannot put back what the writer
replaced. Every replica applies the service's own events to both layers (the
event carries the new snapshot), and the writing process applies its changes
at commit, so it reads its own writes at once. The local TTL bounds how stale a
replica can be while the bus is away; Redis is optional (embedded mode) and a
Redis fault is a cache miss, counted and logged, never an error.
"""

from __future__ import annotations

import abc
import json
import logging
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

from prometheus_client import Counter

log = logging.getLogger("gatehouse.authors.cache")

TOMBSTONE = 2**62  # version of a deleted resource: nothing older may come back
CACHE_LOOKUPS = Counter(
    "gatehouse_authors_cache_lookups_total",
    "Reads by id through the layered cache, by layer and outcome.",
    ["layer", "outcome"],
)
CACHE_ERRORS = Counter(
    "gatehouse_authors_cache_errors_total", "Redis cache operations that failed (read as a miss)."
)


class AbstractCache(abc.ABC):
    @abc.abstractmethod
    async def get(self, kind: str, item_id: UUID) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def put(self, kind: str, item_id: UUID, snapshot: dict[str, Any]) -> None:
        """Remember a snapshot read from the database, unless a newer one is known."""

    @abc.abstractmethod
    async def changed(self, kind: str, item_id: UUID, snapshot: dict[str, Any] | None) -> None:
        """A committed change: the new snapshot, or ``None`` for a deletion."""


class NoCache(AbstractCache):
    async def get(self, kind: str, item_id: UUID) -> dict[str, Any] | None:
        return None

    async def put(self, kind: str, item_id: UUID, snapshot: dict[str, Any]) -> None:
        return None

    async def changed(self, kind: str, item_id: UUID, snapshot: dict[str, Any] | None) -> None:
        return None


class LocalCache(AbstractCache):
    """A TTL LRU of this process: at most ``size`` entries, each valid ``ttl`` seconds."""

    def __init__(self, size: int = 10_000, ttl: float = 2.0) -> None:
        self._size, self._ttl = size, ttl
        self._entries: OrderedDict[tuple[str, UUID], tuple[int, dict[str, Any] | None, float]]
        self._entries = OrderedDict()

    async def get(self, kind: str, item_id: UUID) -> dict[str, Any] | None:
        entry = self._entries.get((kind, item_id))
        if entry is None or entry[2] < time.monotonic():
            CACHE_LOOKUPS.labels("local", "miss").inc()
            return None
        self._entries.move_to_end((kind, item_id))
        CACHE_LOOKUPS.labels("local", "hit" if entry[1] is not None else "miss").inc()
        return entry[1]

    async def put(self, kind: str, item_id: UUID, snapshot: dict[str, Any]) -> None:
        self._store(kind, item_id, int(snapshot["version"]), snapshot)

    async def changed(self, kind: str, item_id: UUID, snapshot: dict[str, Any] | None) -> None:
        version = TOMBSTONE if snapshot is None else int(snapshot["version"])
        self._store(kind, item_id, version, snapshot)

    def _store(
        self, kind: str, item_id: UUID, version: int, snapshot: dict[str, Any] | None
    ) -> None:
        key = (kind, item_id)
        known = self._entries.get(key)
        now = time.monotonic()
        # An expired entry still guards its version: what replaced it may not be undone.
        if known is not None and (known[0] > version or (known[0] == version and known[2] > now)):
            return
        self._entries[key] = (version, snapshot, now + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


# KEYS[1] = entry; ARGV = version, payload ("" for a tombstone), ttl seconds.
_SET_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local known = tonumber(string.match(current, '^(%d+)|'))
  if known and known >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""


class RedisCache(AbstractCache):
    """The shared layer: ``<prefix><kind>:<id>`` = ``<version>|<snapshot JSON>``."""

    def __init__(self, client: Any, *, prefix: str = "gatehouse:authors:", ttl: int = 300) -> None:
        self._client, self._prefix, self._ttl = client, prefix, ttl
        self._script = client.register_script(_SET_IF_NEWER)
        self._logged_at = 0.0

    async def get(self, kind: str, item_id: UUID) -> dict[str, Any] | None:
        try:
            raw = await self._client.get(self._key(kind, item_id))
        except Exception as exc:
            self._failed("get", exc)
            return None
        if raw is None:
            CACHE_LOOKUPS.labels("redis", "miss").inc()
            return None
        _, _, payload = (raw.decode() if isinstance(raw, bytes) else raw).partition("|")
        CACHE_LOOKUPS.labels("redis", "hit" if payload else "miss").inc()
        return json.loads(payload) if payload else None

    async def put(self, kind: str, item_id: UUID, snapshot: dict[str, Any]) -> None:
        await self._set(kind, item_id, int(snapshot["version"]), json.dumps(snapshot))

    async def changed(self, kind: str, item_id: UUID, snapshot: dict[str, Any] | None) -> None:
        if snapshot is None:
            await self._set(kind, item_id, TOMBSTONE, "")
        else:
            await self.put(kind, item_id, snapshot)

    async def _set(self, kind: str, item_id: UUID, version: int, payload: str) -> None:
        try:
            await self._script(keys=[self._key(kind, item_id)], args=[version, payload, self._ttl])
        except Exception as exc:
            self._failed("set", exc)

    def _key(self, kind: str, item_id: UUID) -> str:
        return f"{self._prefix}{kind}:{item_id}"

    def _failed(self, operation: str, exc: Exception) -> None:
        CACHE_ERRORS.inc()
        now = time.monotonic()
        if now - self._logged_at > 30:  # once per interval, not once per request
            self._logged_at = now
            log.warning("redis cache %s failed, reading from the database: %r", operation, exc)


class LayeredCache(AbstractCache):
    """Local first, then Redis; a Redis hit fills the local layer."""

    def __init__(self, local: AbstractCache, shared: AbstractCache) -> None:
        self.local, self.shared = local, shared

    async def get(self, kind: str, item_id: UUID) -> dict[str, Any] | None:
        found = await self.local.get(kind, item_id)
        if found is None:
            found = await self.shared.get(kind, item_id)
            if found is not None:
                await self.local.put(kind, item_id, found)
        return found

    async def put(self, kind: str, item_id: UUID, snapshot: dict[str, Any]) -> None:
        await self.local.put(kind, item_id, snapshot)
        await self.shared.put(kind, item_id, snapshot)

    async def changed(self, kind: str, item_id: UUID, snapshot: dict[str, Any] | None) -> None:
        await self.local.changed(kind, item_id, snapshot)
        await self.shared.changed(kind, item_id, snapshot)
