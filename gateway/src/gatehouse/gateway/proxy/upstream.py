"""One upstream: its replicas, one aiohttp connection pool, a breaker and a retry budget.

The gateway balances across an upstream's replicas itself (round robin, passive
health): a replica that refuses a connection is left out for ``eject_for``
seconds (doubling while it keeps refusing) and the request goes to the next one at
once, since nothing was sent. Behind a Kubernetes Service an upstream has one URL
and the Service balances; both modes are in docs/architecture.md.

Requests go through aiohttp's client directly rather than httpx's client layers,
which alone cost more CPU per request than the whole Python floor (ADR 0002).
aiohttp's own retry of idempotent requests is switched off: the proxy retries a
request at most once, only when a *reused* pooled connection failed before any
byte of the response, only for methods that are idempotent and carry no body, and
only within the upstream's retry budget.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from gatehouse.common.errors import UpstreamError, UpstreamTimeout
from gatehouse.gateway.breaker import AsyncBreaker
from gatehouse.gateway.config import RetryPolicy, Upstream
from gatehouse.gateway.metrics import RETRIES

log = logging.getLogger("gatehouse.gateway.upstream")

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_reused: contextvars.ContextVar[bool] = contextvars.ContextVar("gatehouse_reused", default=False)
UNHEALTHY = frozenset({502, 503, 504})


class _Connector(aiohttp.TCPConnector):
    """Remembers, for the running task, whether the connection came from the pool."""

    async def _get(self, key: Any, traces: Any) -> Any:
        connection = await super()._get(key, traces)
        _reused.set(connection is not None)
        return connection


class RetryBudget:
    """Retries may add at most ``budget_ratio`` of the requests, plus a small floor."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.ratio = policy.budget_ratio
        self.floor = policy.min_per_second
        self.capacity = max(10.0, self.floor * 10)
        self.tokens = self.capacity
        self._last = time.monotonic()

    def deposit(self) -> None:
        self.tokens = min(self.tokens + self.ratio, self.capacity)

    def withdraw(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.tokens + (now - self._last) * self.floor, self.capacity)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Replica:
    base: str  # scheme://host:port
    netloc: str
    ejected_until: float = 0.0
    eject_for: float = 0.0
    _urls: dict[str, URL] = field(default_factory=dict, repr=False)

    def url(self, target: str) -> URL:
        """The URL of ``target`` (raw path and query), parsed once per distinct target."""
        url = self._urls.get(target)
        if url is None:
            url = URL(self.base + target, encoded=True)
            if len(self._urls) < 4096:
                self._urls[target] = url
        return url


class UpstreamPool:
    """Requests to one upstream; created in the lifespan, closed with it."""

    def __init__(self, name: str, config: Upstream) -> None:
        self.name = name
        self.config = config
        self.replicas = [_replica(url) for url in config.urls]
        self.netlocs = frozenset(r.netloc for r in self.replicas)
        self._next = 0
        self.breaker = AsyncBreaker(
            name,
            fail_max=config.breaker.fail_max,
            reset_timeout=config.breaker.reset_timeout,
            max_reset_timeout=config.breaker.max_reset_timeout,
            trial_timeout=config.breaker.trial_timeout,
        )
        self.budget = RetryBudget(config.retry)
        t = config.timeouts
        self.timeout = aiohttp.ClientTimeout(
            total=None, connect=t.pool, sock_connect=t.connect, sock_read=t.read
        )
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = _session(self.config.pool_size)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def pick(self) -> Replica:
        """Round robin over replicas not ejected; the soonest back when all are."""
        now = time.monotonic()
        count = len(self.replicas)
        for _ in range(count):
            replica = self.replicas[self._next % count]
            self._next += 1
            if replica.ejected_until <= now:
                return replica
        return min(self.replicas, key=lambda r: r.ejected_until)

    def eject(self, replica: Replica, why: object) -> None:
        """Take ``replica`` out of rotation after a failed connect, for twice as long as
        last time. Connects that were already under way when it went out fail alike: they
        neither lengthen the time out nor log again (a reconnect storm would write a line
        per socket)."""
        now = time.monotonic()
        if replica.ejected_until > now:
            return
        health = self.config.health
        replica.eject_for = min(replica.eject_for * 2 or health.eject_for, health.max_eject_for)
        replica.ejected_until = now + replica.eject_for
        log.warning(
            "upstream %s replica %s out for %.1fs: %s",
            self.name,
            replica.base,
            replica.eject_for,
            why,
        )

    def _another(self, replica: Replica) -> bool:
        now = time.monotonic()
        return any(r is not replica and r.ejected_until <= now for r in self.replicas)

    def healthy(self, replica: Replica) -> None:
        if replica.eject_for:
            replica.eject_for = 0.0
            replica.ejected_until = 0.0

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterable[bytes] | bytes | None,
    ) -> aiohttp.ClientResponse:
        """Send one request; breaker, replica choice and retries included."""
        self.breaker.admit()
        self.budget.deposit()
        tried = 0
        while True:
            replica = self.pick()
            tried += 1
            _reused.set(False)
            try:
                response = await self.session.request(
                    method,
                    replica.url(target),
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    compress=None,
                    timeout=self.timeout,
                )
            except aiohttp.ClientConnectorError as exc:
                # nothing was sent: any request may go to another replica
                self.eject(replica, f"cannot connect ({exc.os_error!r})")
                if self._another(replica) and self.budget.withdraw():
                    RETRIES.labels(self.name, "refused").inc()
                    continue
                self.breaker.record(failed=True)
                raise UpstreamError(f"upstream {self.name} is unreachable") from exc
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if (
                    _reused.get()
                    and tried == 1
                    and method in _IDEMPOTENT
                    and body is None
                    and self.budget.withdraw()
                ):
                    RETRIES.labels(self.name, "stale").inc()
                    continue  # a stale pooled connection: the request never reached it
                self.breaker.record(failed=False)
                raise UpstreamError(f"upstream {self.name} failed: {type(exc).__name__}") from exc
            except TimeoutError as exc:
                self.breaker.record(failed=True)
                raise UpstreamTimeout(f"upstream {self.name} did not answer in time") from exc
            except aiohttp.ClientError as exc:
                self.breaker.record(failed=False)
                raise UpstreamError(f"upstream {self.name} failed: {type(exc).__name__}") from exc
            self.healthy(replica)
            self.breaker.record(failed=response.status in UNHEALTHY)
            return response


def _replica(url: str) -> Replica:
    parsed = URL(url)
    netloc = f"{parsed.host}:{parsed.port}" if parsed.port else str(parsed.host)
    return Replica(base=f"{parsed.scheme}://{netloc}", netloc=netloc)


def _session(pool_size: int) -> aiohttp.ClientSession:
    # Keep-alive below uvicorn's 5 s, so the upstream rarely closes a connection just
    # as it is reused; responses are not decompressed, cookies are never kept (one
    # user's Set-Cookie must never ride along on another user's request).
    session = aiohttp.ClientSession(
        connector=_Connector(limit=pool_size, keepalive_timeout=4.0),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_NOT_ADDED,
        auto_decompress=False,
        trust_env=False,
        requote_redirect_url=False,
    )
    session._retry_connection = False  # the proxy retries itself, within a budget
    return session
