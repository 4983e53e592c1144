"""The one health contract of every Gatehouse service.

``GET /healthz`` -> 200 ``{"status": "ok"}``: the process answers; nothing else is
checked (a liveness probe must not restart a pod because its database is down).

``GET /readyz`` -> 200 or 503 ``{"status": "ready"|"not_ready", "checks": {name:
{"ok": bool, "detail": str}}}``: every check of the service, run concurrently, each
within ``timeout`` seconds (a hung dependency is a failed check, not a hung probe).
A check that raises fails with the exception's type, never its text (which may hold
a URL or a password); the exception is logged. Check names in use: ``jwks``,
``database``, ``schema``, ``bus``, ``intake``, ``relay_lag``, ``rate_limit_store``,
``accepting``, ``upstream:<name>``.

A service builds one :class:`Health`, adds its checks (the ready-made ones below, or
any ``async () -> Check``), and serves it with :func:`health_router` (FastAPI) or
:meth:`Health.asgi` (pure ASGI, for the gateway).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gatehouse.common.types import Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import APIRouter

    from gatehouse.common.events import EventBus, Subscription
    from gatehouse.common.tokens import JWTVerifier

log = logging.getLogger("gatehouse.health")
LIVE_BODY = {"status": "ok"}


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict of one readiness check."""

    ok: bool
    detail: str = ""


CheckFn = Callable[[], Awaitable[Check]]


class Health:
    """The readiness checks of one service.

    Not ready until :meth:`started` (the end of the lifespan's start-up) and again
    from :meth:`stopping`, whatever the checks say: a check named ``started``
    says so.
    """

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._checks: dict[str, CheckFn] = {}
        self._phase = "starting"

    def started(self) -> None:
        self._phase = "serving"

    def stopping(self) -> None:
        self._phase = "stopping"

    def add(self, name: str, check: CheckFn) -> None:
        self._checks[name] = check

    def add_flag(self, name: str, flag: Callable[[], bool], detail_when_off: str) -> None:
        """A check that is ``flag()``; ``detail_when_off`` says what it means when False."""

        async def check() -> Check:
            return Check(True) if flag() else Check(False, detail_when_off)

        self.add(name, check)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        """The status code and body of ``/readyz``."""
        names = list(self._checks)
        results = list(await asyncio.gather(*(self._run(n) for n in names)))
        if self._phase != "serving":
            names.append("started")
            results.append(Check(False, self._phase))
        checks = {n: {"ok": r.ok, "detail": r.detail} for n, r in zip(names, results, strict=True)}
        ready = all(r.ok for r in results)
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        return (200 if ready else 503), body

    async def _run(self, name: str) -> Check:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._checks[name]()
        except TimeoutError:
            return Check(False, f"no answer within {self.timeout:g} s")
        except Exception as exc:
            log.warning("readiness check %s failed", name, exc_info=True)
            return Check(False, f"check failed ({type(exc).__name__})")

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer ``/healthz`` and ``/readyz`` (any other path: 404) as pure ASGI."""
        if scope["path"] == "/healthz":
            status, body = 200, LIVE_BODY
        elif scope["path"] == "/readyz":
            status, body = await self.readiness()
        else:
            status, body = 404, {"status": "not_found"}
        raw = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(raw)),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


def health_router(get_health: Callable[[], Health], *, metrics: bool = True) -> APIRouter:
    """``/healthz``, ``/readyz`` and (unless ``metrics=False``) ``/metrics`` for a FastAPI
    app; ``get_health`` returns the app's :class:`Health`."""
    from fastapi import APIRouter, Response
    from fastapi.responses import JSONResponse

    from gatehouse.common.metrics import metrics_response

    router = APIRouter(tags=["health"], include_in_schema=False)  # operators, not clients
    if metrics:

        @router.get("/metrics", include_in_schema=False)
        async def prometheus() -> Response:
            return metrics_response()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers; no dependency is checked."""
        return LIVE_BODY

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: every dependency of the service, by name (503 when one fails)."""
        status, body = await get_health().readiness()
        return JSONResponse(body, status, headers={"Cache-Control": "no-store"})

    return router


def jwks_check(verifier: JWTVerifier) -> CheckFn:
    """``jwks``: the issuer's signing keys are loaded (loading them now if they are not)."""

    async def check() -> Check:
        if await verifier.ensure_ready():
            return Check(True, f"{verifier.key_count} signing keys of {verifier.issuer}")
        return Check(False, verifier.last_error or f"no signing keys of {verifier.issuer}")

    return check


def bus_check(bus: EventBus) -> CheckFn:
    """``bus``: the event bus is connected to its broker (an in-process bus always is)."""

    async def check() -> Check:
        if bus.connected():
            return Check(True)
        return Check(False, "not connected to the broker (reconnecting)")

    return check


def subscription_check(subscription: Subscription, what: str) -> CheckFn:
    """A subscription (``what`` names it in the detail) is consuming."""

    async def check() -> Check:
        if subscription.active:
            return Check(True)
        return Check(False, f"{what} is not consuming")

    return check
