"""The gateway's own endpoints: health and readiness on both ports, metrics on the admin port.

``/metrics`` names internal routes and counts login failures, so it is served only
on the admin port (``GATEHOUSE_ADMIN_PORT``), apart from public traffic, as Kong
and Envoy keep theirs.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gatehouse.common.errors import ServiceUnavailable
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.proxy.upstream import UpstreamPool
from gatehouse.gateway.rate_limit import RateLimitStore, StoreUnavailable

Check = dict[str, Any]


class KeySource(Protocol):
    issuer: str

    @property
    def ready(self) -> bool: ...

    async def refresh(self, *, force: bool = False) -> None: ...


class Readiness:
    """Per-check detail; not ready when the JWKS is not loaded or a store that must work fails.

    An open breaker is a fact about an upstream, not about this replica: it is
    reported (``upstream:<name>``) but never makes the gateway unready.
    """

    def __init__(
        self,
        verifier: KeySource,
        store: RateLimitStore,
        fail_open: bool,
        upstreams: Any,
    ) -> None:
        self.verifier = verifier
        self.store = store
        self.fail_open = fail_open
        self.upstreams = upstreams  # a callable returning the current pools

    async def report(self) -> tuple[bool, dict[str, Check]]:
        checks = {"jwks": await self._jwks(), "rate_limit_store": await self._store()}
        pools: dict[str, UpstreamPool] = self.upstreams()
        for name, pool in pools.items():
            checks[f"upstream:{name}"] = {
                "ok": pool.breaker.state != "open",
                "detail": f"breaker {pool.breaker.state}",
                "required": False,
            }
        ready = all(c["ok"] or not c.get("required", True) for c in checks.values())
        return ready, checks

    async def _jwks(self) -> Check:
        if not self.verifier.ready:
            try:  # rate-limited inside the verifier; lets a gateway started before its issuer heal
                await self.verifier.refresh()
            except ServiceUnavailable as exc:
                return {"ok": False, "detail": exc.detail}
        ok = self.verifier.ready
        return {"ok": ok, "detail": f"keys of {self.verifier.issuer}" if ok else "no keys loaded"}

    async def _store(self) -> Check:
        # When failing open the gateway still serves without the store, so it stays ready.
        check: Check = {"ok": True, "detail": self.store.name, "required": not self.fail_open}
        try:
            await self.store.ping()
        except StoreUnavailable as exc:
            check.update(ok=False, detail=f"{self.store.name}: {exc}")
        return check


async def healthz(send: Send) -> None:
    await respond_json(send, 200, {"status": "ok"})


async def readyz(readiness: Readiness, send: Send) -> None:
    ready, checks = await readiness.report()
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    await respond_json(send, 200 if ready else 503, body)


async def respond_json(send: Send, status: int, body: Any) -> None:
    await respond(send, status, b"application/json", json.dumps(body).encode())


async def respond(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AdminApp:
    """The admin port: ``/metrics``, ``/healthz``, ``/readyz`` (pure ASGI, no lifespan)."""

    def __init__(self, readiness: Any) -> None:
        self.readiness = readiness  # a callable returning the current Readiness or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await respond_json(send, 405, {"status": "method not allowed"})
        elif path == "/metrics":
            await respond(send, 200, CONTENT_TYPE_LATEST.encode(), generate_latest())
        elif path == "/healthz":
            await healthz(send)
        elif path == "/readyz" and (readiness := self.readiness()) is not None:
            await readyz(readiness, send)
        else:
            await respond_json(send, 404, {"status": "not found"})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
