"""The gateway's own endpoints: health and readiness on both ports, metrics on the admin port.

Readiness is the kit's contract (:mod:`gatehouse.common.health`): ``jwks`` (the
issuer's keys are loaded), ``rate_limit_store`` (fails only when the store is down
and the gateway fails closed) and one ``upstream:<name>`` per upstream, which reports
the breaker but never makes the gateway unready: an open circuit is a fact about an
upstream, and taking every gateway replica out for it would turn one outage into all.

``/metrics`` names internal routes and counts login failures, so it is served only on
the admin port (``GATEHOUSE_ADMIN_PORT``), apart from public traffic, as Kong and
Envoy keep theirs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gatehouse.common.health import Check, CheckFn, Health, jwks_check
from gatehouse.common.tokens import JWTVerifier
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.proxy.upstream import UpstreamPool
from gatehouse.gateway.rate_limit import RateLimitStore, StoreUnavailable


def gateway_health(verifier: JWTVerifier, store: RateLimitStore, fail_open: bool) -> Health:
    """The checks of the process; ``upstream:<name>`` ones are added per config."""
    health = Health()
    health.add("jwks", jwks_check(verifier))
    health.add("rate_limit_store", _store_check(store, fail_open))
    return health


def _store_check(store: RateLimitStore, fail_open: bool) -> CheckFn:
    async def check() -> Check:
        try:
            await store.ping()
        except StoreUnavailable:
            if fail_open:  # the gateway still serves, without limits: ready, but say so
                return Check(True, f"{store.name} unreachable: failing open")
            return Check(False, f"{store.name} unreachable: failing closed")
        return Check(True, store.name)

    return check


def upstream_check(upstreams: Callable[[], dict[str, UpstreamPool]], name: str) -> CheckFn:
    async def check() -> Check:
        pool = upstreams().get(name)
        if pool is None:
            return Check(True, "no longer configured")
        return Check(True, f"breaker {pool.breaker.state}")

    return check


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
    """The admin port: ``/metrics``, ``/healthz``, ``/readyz`` (pure ASGI)."""

    def __init__(self, health: Callable[[], Health | None]) -> None:
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        health = self.health()
        if scope["method"] not in ("GET", "HEAD"):
            await respond_json(send, 405, {"status": "method_not_allowed"})
        elif scope["path"] == "/metrics":
            await respond(send, 200, CONTENT_TYPE_LATEST.encode(), generate_latest())
        elif health is not None:
            await health.asgi(scope, receive, send)
        else:
            await respond_json(send, 503, {"status": "not_ready", "checks": {}})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
