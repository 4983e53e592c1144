"""Composition of the whole system: the only module that knows every service.

Monolithic mode runs the four services as four uvicorn servers in one event loop.
They share one in-process event bus, and the gateway still proxies to the others
over real loopback HTTP and WebSocket, so the edge path is the production one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from gatehouse.cli.banner import print_banner
from gatehouse.common.events import InMemoryEventBus
from gatehouse.common.logging import setup_logging
from gatehouse.common.settings import CommonSettings

log = logging.getLogger("gatehouse.launcher")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the launcher."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: Any, host: str, port: int, **extra: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "log_config": None,
        "lifespan": "on",
        "server_header": False,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
        # The gateway resolves X-Forwarded-For itself, from trusted proxies only;
        # uvicorn trusting loopback would let clients choose their rate-limit key.
        "proxy_headers": False,
    }
    return uvicorn.Config(app, host=host, port=port, **{**options, **extra})


def _setup_logging() -> CommonSettings:
    common = CommonSettings()
    setup_logging(common.log_level, json_logs=common.log_json)
    return common


async def _run_all() -> None:
    from gatehouse.auth.app import create_app as auth_app
    from gatehouse.auth.demo import demo_credentials
    from gatehouse.auth.settings import AuthSettings
    from gatehouse.authors.app import create_app as authors_app
    from gatehouse.authors.migrations import migrate
    from gatehouse.authors.settings import AuthorsSettings
    from gatehouse.gateway.app import create_app as gateway_app
    from gatehouse.gateway.settings import GatewaySettings
    from gatehouse.realtime.app import create_app as realtime_app
    from gatehouse.realtime.server import uvicorn_ws_options
    from gatehouse.realtime.settings import RealtimeSettings

    auth = AuthSettings()
    issuer = auth.issuer()
    authors = AuthorsSettings(oidc_issuer=issuer)
    realtime = RealtimeSettings(oidc_issuer=issuer)
    gateway = GatewaySettings(
        oidc_issuer=issuer,
        upstream_authors_url=f"http://{authors.host}:{authors.port}",
        upstream_realtime_url=f"http://{realtime.host}:{realtime.port}",
        upstream_auth_url=f"http://{auth.host}:{auth.port}",
    )
    await migrate(authors.sqlalchemy_url())
    bus = InMemoryEventBus()
    auth_server = _Server(_config(auth_app(auth), auth.host, auth.port))
    others = [
        _Server(_config(authors_app(authors, bus=bus), authors.host, authors.port)),
        _Server(
            _config(
                realtime_app(realtime, bus=bus),
                realtime.host,
                realtime.port,
                **uvicorn_ws_options(realtime),
            )
        ),
        _Server(_config(gateway_app(gateway), gateway.host, gateway.port)),
    ]
    servers = [auth_server, *others]
    credentials = demo_credentials(auth)  # before auth starts: it knows if it was new
    await _serve(servers, on_started=lambda: _announce(gateway, credentials))


async def _serve(servers: list[_Server], on_started: Callable[[], None] | None = None) -> None:
    """Serve until a signal, starting the first server (the issuer) before the others
    so that they load its keys at start-up. One server ending ends them all."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop, servers)
    first = asyncio.create_task(servers[0].serve())
    tasks = [first]
    if await _wait_started(servers[0], first):
        tasks += [asyncio.create_task(s.serve()) for s in servers[1:]]
        waiting = asyncio.create_task(_all_started(servers))
        done, _ = await asyncio.wait([*tasks, waiting], return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            if on_started is not None:
                on_started()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        else:
            waiting.cancel()
    _stop(servers)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    if any(not s.started for s in servers):
        raise SystemExit("gatehouse: a server could not start (is its port in use?)")


async def _wait_started(server: _Server, task: asyncio.Task[None]) -> bool:
    while not server.started:
        if task.done():
            return False
        await asyncio.sleep(0.02)
    return True


async def _all_started(servers: list[_Server]) -> bool:
    while not all(s.started for s in servers):  # noqa: ASYNC110 - uvicorn exposes a bool
        await asyncio.sleep(0.05)
    return True


def _stop(servers: list[_Server]) -> None:
    for server in servers:
        server.should_exit = True


def _announce(gateway: Any, credentials: Any) -> None:
    shown = credentials.password if credentials.newly_generated else None
    print_banner(gateway, shown, credentials.path)


def run_all() -> None:
    _setup_logging()
    _run(_run_all())


def run_one(mode: str) -> None:
    _setup_logging()
    if mode == "relay":
        _run(_run_relay())
        return
    _run(_serve([_one_server(mode)]))


def _one_server(mode: str) -> _Server:
    if mode == "gateway":
        from gatehouse.gateway.app import create_app as gateway_app
        from gatehouse.gateway.settings import GatewaySettings

        gateway = GatewaySettings()
        return _Server(_config(gateway_app(gateway), gateway.host, gateway.port))
    if mode == "authors":
        from gatehouse.authors.app import create_app as authors_app
        from gatehouse.authors.settings import AuthorsSettings

        authors = AuthorsSettings()
        return _Server(_config(authors_app(authors), authors.host, authors.port))
    if mode == "realtime":
        from gatehouse.realtime.app import create_app as realtime_app
        from gatehouse.realtime.server import uvicorn_ws_options
        from gatehouse.realtime.settings import RealtimeSettings

        realtime = RealtimeSettings()
        return _Server(
            _config(
                realtime_app(realtime), realtime.host, realtime.port, **uvicorn_ws_options(realtime)
            )
        )
    from gatehouse.auth.app import create_app as auth_app
    from gatehouse.auth.settings import AuthSettings

    auth = AuthSettings()
    return _Server(_config(auth_app(auth), auth.host, auth.port))


async def _run_relay() -> None:
    from gatehouse.authors.relay import run_relay
    from gatehouse.authors.settings import AuthorsSettings

    settings = AuthorsSettings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_relay(settings, stop)


def migrate() -> None:
    from gatehouse.authors.migrations import migrate as upgrade
    from gatehouse.authors.settings import AuthorsSettings

    _setup_logging()
    settings = AuthorsSettings()
    _run(upgrade(settings.sqlalchemy_url()))
    log.info("authors database is at the latest migration")


def _run(main: Any) -> None:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        runner.run(main)
