"""The composition root: ``create_app(settings)`` returns the gateway's ASGI app.

Configuration is read and validated here, at start-up; the verifier, the upstream
pools, the rate-limit store and the revocation poller are created in the ASGI
lifespan, and an :class:`EdgeStage` is built from them and the config. A reload
(SIGHUP, or the config file changing) validates the new file, builds a new stage
and swaps it in one assignment; an invalid file is rejected with a log line naming
the key and the running config keeps serving. ``server_options()`` are what uvicorn
needs to enforce the edge's wire limits; ``admin`` is the admin-port app (metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatehouse.common.errors import ConfigurationError, ServiceUnavailable
from gatehouse.common.health import LIVE_BODY, Health
from gatehouse.common.problem import send_problem
from gatehouse.common.settings import mask_url
from gatehouse.common.tokens import JWTVerifier
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.config import GatewayConfig, load_config
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.edge.stage import EdgeStage, Endpoint
from gatehouse.gateway.metrics import CONFIG_RELOADS
from gatehouse.gateway.openapi import DOCS_CSP, DOCS_HTML, ApiDocuments
from gatehouse.gateway.ops import (
    AdminApp,
    gateway_health,
    respond,
    respond_json,
    upstream_check,
)
from gatehouse.gateway.proxy.upstream import UpstreamPool
from gatehouse.gateway.proxy.websocket import LiveSockets
from gatehouse.gateway.rate_limit import MemoryRateLimitStore, RateLimitStore, StoreUnavailable
from gatehouse.gateway.rate_limit_redis import RedisRateLimitStore
from gatehouse.gateway.revocation import RevocationList, RevocationPoller
from gatehouse.gateway.server import uvicorn_options
from gatehouse.gateway.settings import GatewaySettings

log = logging.getLogger("gatehouse.gateway")
# Requests allocate and free by reference counting; the cyclic collector ran every 700
# allocations (every two or three requests) to walk the requests in flight.
GC_YOUNG = 10_000
RETIRE_AFTER = (
    60.0  # seconds an upstream pool replaced by a reload keeps serving in-flight requests
)


def create_app(settings: GatewaySettings, *, config: GatewayConfig | None = None) -> Gateway:
    """The gateway ASGI app; ``config`` defaults to the file the settings name."""
    if config is None:
        config = load_config(settings.config_path, settings.upstream_overrides())
    return Gateway(settings, config)


@dataclass
class Resources:
    verifier: JWTVerifier
    store: RateLimitStore
    revocations: RevocationList = field(default_factory=RevocationList)
    live: LiveSockets = field(default_factory=LiveSockets)
    upstreams: dict[str, UpstreamPool] = field(default_factory=dict)


class Gateway:
    """Handles the lifespan itself and runs the current stage."""

    def __init__(self, settings: GatewaySettings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        self.resources: Resources | None = None
        self.stage: EdgeStage | None = None
        self.health: Health | None = None
        self.admin = AdminApp(lambda: self.health)
        self._poller: RevocationPoller | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stage = self.stage
        if stage is not None and scope["type"] != "lifespan":
            await stage(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            await _not_started(scope, send)

    def server_options(self) -> dict[str, Any]:
        """What ``uvicorn.Config`` needs to serve this app with the edge's wire limits."""
        return uvicorn_options(lambda: self.config.limits)

    # -- lifespan -----------------------------------------------------------------------

    async def startup(self) -> None:
        settings = self.settings
        verifier = JWTVerifier(settings.issuer(), settings.oidc_audience)
        await verifier.start()
        store: RateLimitStore
        if settings.redis_url:
            store = RedisRateLimitStore(settings.redis_url, settings.rate_limit_prefix)
            await _reachable(store, settings.redis_url)
        else:
            store = MemoryRateLimitStore()
        self.resources = res = Resources(verifier, store)
        self.health = gateway_health(verifier, store, settings.rate_limit_fail_open)
        self._apply(self.config)
        self._poller = RevocationPoller(
            res.revocations,
            self._auth_base,
            self._auth_session,
            lambda: self.config.revocation_poll,
            lambda: _close_revoked(res),
        )
        self._poller.start()
        self._watch()
        # What start-up made (modules, config, pools) lives as long as the process: out of
        # the cyclic collector's sight, a full collection no longer walks it (CPU and p99).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
        self.health.started()
        log.info(
            "gateway ready: %d routes, upstreams %s",
            len(self.config.routes),
            {n: list(u.urls) for n, u in self.config.upstreams.items()},
        )

    async def shutdown(self) -> None:
        if self.health is not None:
            self.health.stopping()
        self.stage = None
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._poller is not None:
            await self._poller.stop()
        for task in list(self._retiring):
            task.cancel()
        res, self.resources = self.resources, None
        if res is not None:
            for pool in res.upstreams.values():
                await pool.close()
            await res.store.close()
            await res.verifier.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except ConfigurationError:
                    raise  # the server harness makes it one line naming the variable
                except Exception as exc:
                    log.exception("gateway failed to start")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- reload -------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config; apply it when valid. False (and the old config) when not."""
        try:
            config = load_config(self.settings.config_path, self.settings.upstream_overrides())
        except ConfigurationError as exc:
            CONFIG_RELOADS.labels("rejected").inc()
            log.error("config reload rejected, the running config stays: %s", exc.detail)
            return False
        if config == self.config:
            CONFIG_RELOADS.labels("unchanged").inc()
            return True
        self._apply(config)
        CONFIG_RELOADS.labels("applied").inc()
        log.info("config reloaded: %d routes", len(config.routes))
        return True

    def _apply(self, config: GatewayConfig) -> None:
        """Build the stage for ``config`` and swap it in (one assignment)."""
        res = self.resources
        assert res is not None, "startup() first"
        old = res.upstreams
        pools = {
            name: old[name] if name in old and old[name].config == up else UpstreamPool(name, up)
            for name, up in config.upstreams.items()
        }
        docs = ApiDocuments(config, pools)
        stage = EdgeStage(
            config,
            verifier=res.verifier,
            store=res.store,
            fail_open=self.settings.rate_limit_fail_open,
            revocations=res.revocations,
            upstreams=pools,
            live=res.live,
            endpoints=self._endpoints(docs),
            resource_methods=docs.methods_of,
        )
        res.upstreams = pools
        self.config, self.stage = config, stage
        if self.health is not None:
            for name in pools:
                self.health.add(f"upstream:{name}", upstream_check(self._pools, name))
        for name, pool in old.items():
            if pools.get(name) is not pool:
                self._retire(pool)

    def _retire(self, pool: UpstreamPool) -> None:
        async def close_later() -> None:
            try:
                await asyncio.sleep(RETIRE_AFTER)
            finally:
                await pool.close()

        task = asyncio.create_task(close_later())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _watch(self) -> None:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)
        path, interval = self.settings.config_path, self.settings.config_watch
        if path is not None and interval > 0:
            self._watcher = asyncio.create_task(_watch_file(path, interval, self.reload))

    # -- helpers ------------------------------------------------------------------------

    def _pools(self) -> dict[str, UpstreamPool]:
        return self.resources.upstreams if self.resources else {}

    def _auth_base(self) -> str | None:
        pool = self._pools().get("auth")
        return pool.pick().base if pool else None

    def _auth_session(self) -> Any:
        return self._pools()["auth"].session

    def _endpoints(self, docs: ApiDocuments) -> dict[str, Endpoint]:
        async def health(ex: Exchange, send: Send) -> None:
            await respond_json(send, 200, LIVE_BODY)

        async def ready(ex: Exchange, send: Send) -> None:
            assert self.health is not None
            await respond_json(send, *await self.health.readiness())

        async def openapi(ex: Exchange, send: Send) -> None:
            await respond_json(send, 200, await docs.openapi())

        async def asyncapi(ex: Exchange, send: Send) -> None:
            document = await docs.asyncapi()
            if document is None:
                raise ServiceUnavailable(
                    "the realtime service's AsyncAPI is unavailable", retry_after=5
                )
            await respond_json(send, 200, document)

        async def swagger(ex: Exchange, send: Send) -> None:
            ex.csp = DOCS_CSP
            await respond(send, 200, b"text/html; charset=utf-8", DOCS_HTML)

        return {
            "/healthz": health,
            "/readyz": ready,
            "/openapi.json": openapi,
            "/asyncapi.json": asyncapi,
            "/docs": swagger,
        }


def _close_revoked(res: Resources) -> None:
    if closed := res.live.close_revoked(res.revocations.is_revoked):
        log.info("closed %d WebSockets of revoked sessions", closed)


async def _watch_file(path: Path, interval: float, reload: Any) -> None:
    """Reload when the file's modification time or size changes (atomic renames included)."""

    def stamp() -> tuple[float, int] | None:
        try:
            info = path.stat()
        except OSError:
            return None
        return info.st_mtime, info.st_size

    last = stamp()
    while True:
        await asyncio.sleep(interval)
        now = stamp()
        if now is not None and now != last:
            last = now
            reload()


async def _reachable(store: RedisRateLimitStore, url: str) -> None:
    """A wrong REDIS_URL stops start-up (failing open is for outages, not for typos)."""
    try:
        await store.ping()
    except StoreUnavailable as exc:
        await store.close()
        cause = exc.__cause__ or exc
        reason = getattr(cause, "strerror", None) or str(cause) or type(cause).__name__
        message = f"cannot reach Redis at {mask_url(url)}: {reason}"
        raise ConfigurationError("REDIS_URL", message) from None


async def _not_started(scope: Scope, send: Send) -> None:
    error = ServiceUnavailable("the gateway has not started (ASGI lifespan not run)", retry_after=1)
    if scope["type"] == "http":
        await send_problem(send, error, scope.get("path"))
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013, "reason": "not started"})
