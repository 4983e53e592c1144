"""Revoked sessions and subjects, polled from the auth service, refused at the edge.

Contract (CONTRACTS.md): the auth service serves, not routed publicly,
``GET /internal/revocations?after=<cursor>`` ->
``{"items": [{"kind": "session"|"subject", "id", "revoked_at", "expires_at"}], "cursor"}``.
A token is refused when its ``sid`` is a revoked session, or its ``sub`` a revoked
subject and its ``iat <= revoked_at``. The gateway polls every ``revocation_poll``
seconds (default 2) through its ``auth`` upstream, so a logged-out token stops
working within seconds, even while the verified-token cache still holds it; proxied
WebSockets of a revoked session are closed. While the auth service cannot be
reached the list the gateway has keeps applying (a poll failure is logged once per
minute and counted); items leave the list at their ``expires_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from gatehouse.common.identity import Principal
from gatehouse.gateway.metrics import REVOCATION_POLLS, REVOCATIONS

log = logging.getLogger("gatehouse.gateway.revocation")
PATH = "/internal/revocations"


class RevocationList:
    """What is revoked now; ``is_revoked`` is a dictionary lookup on the hot path."""

    def __init__(self) -> None:
        self.sessions: dict[str, float] = {}  # sid -> expires_at
        self.subjects: dict[str, tuple[float, float]] = {}  # sub -> (revoked_at, expires_at)
        self.cursor: str | None = None

    def __len__(self) -> int:
        return len(self.sessions) + len(self.subjects)

    def is_revoked(self, principal: Principal) -> bool:
        if not self.sessions and not self.subjects:
            return False
        claims = principal.claims
        sid = claims.get("sid")
        if isinstance(sid, str) and sid in self.sessions:
            return True
        revoked = self.subjects.get(principal.subject)
        if revoked is None:
            return False
        iat = claims.get("iat")
        return not isinstance(iat, int | float) or iat <= revoked[0]

    def apply(self, items: list[dict[str, Any]], now: float | None = None) -> int:
        """Add items; drop those past ``expires_at``. How many were new."""
        added = 0
        for item in items:
            kind, ident = item.get("kind"), item.get("id")
            revoked_at = float(item.get("revoked_at", 0))
            expires_at = float(item.get("expires_at", 0))
            if not isinstance(ident, str):
                continue
            if kind == "session" and ident not in self.sessions:
                self.sessions[ident] = expires_at
                added += 1
            elif kind == "subject":
                old = self.subjects.get(ident)
                if old is None or revoked_at > old[0]:
                    self.subjects[ident] = (revoked_at, max(expires_at, old[1] if old else 0))
                    added += 1
        self.expire(time.time() if now is None else now)
        REVOCATIONS.set(len(self))
        return added

    def expire(self, now: float) -> None:
        self.sessions = {k: exp for k, exp in self.sessions.items() if exp > now}
        self.subjects = {k: v for k, v in self.subjects.items() if v[1] > now}


class RevocationPoller:
    """Polls ``base_url()`` + ``/internal/revocations`` and applies what it learns."""

    def __init__(
        self,
        revocations: RevocationList,
        base_url: Callable[[], str | None],
        session: Callable[[], aiohttp.ClientSession],
        interval: Callable[[], float],
        on_new: Callable[[], None],
    ) -> None:
        self.revocations = revocations
        self.base_url = base_url
        self.session = session
        self.interval = interval
        self.on_new = on_new
        self._task: asyncio.Task[None] | None = None
        self._last_error_log = float("-inf")
        self.polled = asyncio.Event()  # set after each successful poll (tests wait on it)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gatehouse-revocation-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval())

    async def poll_once(self) -> None:
        base = self.base_url()
        if base is None:
            return
        params = {"after": self.revocations.cursor} if self.revocations.cursor else {}
        try:
            async with self.session().get(
                base + PATH, params=params, timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                if response.status == 404:
                    raise LookupError("the auth service has no /internal/revocations yet")
                response.raise_for_status()
                data = await response.json()
            added = self.revocations.apply(list(data.get("items") or []))
            self.revocations.cursor = data.get("cursor") or self.revocations.cursor
        except (aiohttp.ClientError, TimeoutError, ValueError, LookupError, AttributeError) as exc:
            REVOCATION_POLLS.labels("error").inc()
            self._log(exc)
            return
        REVOCATION_POLLS.labels("ok").inc()
        self.polled.set()
        if added:
            self.on_new()

    def _log(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= 60:
            self._last_error_log = now
            log.warning("revocation poll failed (keeping %d items): %r", len(self.revocations), exc)
