"""The gateway's own endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (pure ASGI)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gatehouse.common.errors import ServiceUnavailable
from gatehouse.common.tokens import JWTVerifier
from gatehouse.common.types import ASGIApp, Receive, Scope, Send
from gatehouse.gateway.rate_limit import RateLimiter, StoreUnavailable
from gatehouse.gateway.upstreams import UpstreamClient


@dataclass(frozen=True)
class _Template:
    """A route-template stand-in so the RED metrics label these endpoints by name."""

    path: str


Check = dict[str, Any]


class Readiness:
    """Per-check detail; not ready when the JWKS is not loaded or a store that must work fails."""

    def __init__(
        self, verifier: JWTVerifier, limiter: RateLimiter, upstreams: dict[str, UpstreamClient]
    ) -> None:
        self.verifier = verifier
        self.limiter = limiter
        self.upstreams = upstreams

    async def report(self) -> tuple[bool, dict[str, Check]]:
        checks = {"jwks": await self._jwks(), "rate_limit_store": await self._store()}
        checks["breakers"] = {
            "ok": True,  # an open circuit is a fact about an upstream, not about this replica
            "states": {name: u.breaker.state for name, u in self.upstreams.items()},
        }
        ready = all(c["ok"] or not c.get("required", True) for c in checks.values())
        return ready, checks

    async def _jwks(self) -> Check:
        if not self.verifier.ready:
            try:  # rate-limited inside the verifier; lets a gateway started before its issuer heal
                await self.verifier.refresh()
            except ServiceUnavailable as exc:
                return {"ok": False, "detail": exc.detail}
        return {"ok": self.verifier.ready, "issuer": self.verifier.issuer}

    async def _store(self) -> Check:
        store = self.limiter.store
        # When failing open the gateway still serves without the store, so it stays ready.
        check: Check = {"ok": True, "store": store.name, "required": not self.limiter.fail_open}
        try:
            await store.ping()
        except StoreUnavailable as exc:
            check.update(ok=False, detail=str(exc))
        return check


class OpsMiddleware:
    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness
        self.endpoints: dict[str, Callable[[Send], Awaitable[None]]] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoints.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        scope["route"] = _Template(scope["path"])
        await endpoint(send)

    async def _healthz(self, send: Send) -> None:
        await _json(send, 200, {"status": "ok"})

    async def _readyz(self, send: Send) -> None:
        ready, checks = await self.readiness.report()
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        await _json(send, 200 if ready else 503, body)

    async def _metrics(self, send: Send) -> None:
        await _respond(send, 200, CONTENT_TYPE_LATEST.encode(), generate_latest())


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    await _respond(send, status, b"application/json", json.dumps(body).encode())


async def _respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
