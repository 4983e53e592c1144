"""Composition of the whole system: the only module that knows every service.

Monolithic mode runs the four services as four uvicorn servers in one event loop.
They share one in-process event bus, and the gateway still proxies to the others
over real loopback HTTP and WebSocket, so the edge path is the production one.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from gatehouse.cli.banner import print_banner
from gatehouse.cli.servers import Server, serve
from gatehouse.common.bus import MEMORY_URL, bus_from_url
from gatehouse.common.logging import setup_logging
from gatehouse.common.settings import CommonSettings

log = logging.getLogger("gatehouse.launcher")


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
    bus = bus_from_url(MEMORY_URL)  # one in-process bus shared by authors and realtime
    auth_server = Server(auth_app(auth), auth.host, auth.port)
    others = [
        Server(authors_app(authors, bus=bus), authors.host, authors.port),
        Server(
            realtime_app(realtime, bus=bus),
            realtime.host,
            realtime.port,
            **uvicorn_ws_options(realtime),
        ),
        *_gateway_servers(gateway),
    ]
    servers = [auth_server, *others]
    credentials = demo_credentials(auth)  # before auth starts: it knows if it was new
    await serve(servers, on_started=lambda: _announce(gateway, credentials))


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
    if mode == "gateway":
        from gatehouse.gateway.settings import GatewaySettings

        _run(serve(_gateway_servers(GatewaySettings())))
        return
    _run(serve([_one_server(mode)]))


def _gateway_servers(gateway: Any) -> list[Server]:
    """The public port with the gateway's wire limits, and the admin port (/metrics)."""
    from gatehouse.gateway.app import create_app as gateway_app

    app = gateway_app(gateway)
    return [
        Server(app, gateway.host, gateway.port, **app.server_options()),
        Server(app.admin, gateway.admin_bind(), gateway.admin_port),
    ]


def _one_server(mode: str) -> Server:
    if mode == "authors":
        from gatehouse.authors.app import create_app as authors_app
        from gatehouse.authors.settings import AuthorsSettings

        authors = AuthorsSettings()
        return Server(authors_app(authors), authors.host, authors.port)
    if mode == "realtime":
        from gatehouse.realtime.app import create_app as realtime_app
        from gatehouse.realtime.server import uvicorn_ws_options
        from gatehouse.realtime.settings import RealtimeSettings

        realtime = RealtimeSettings()
        return Server(
            realtime_app(realtime), realtime.host, realtime.port, **uvicorn_ws_options(realtime)
        )
    from gatehouse.auth.app import create_app as auth_app
    from gatehouse.auth.settings import AuthSettings

    auth = AuthSettings()
    return Server(auth_app(auth), auth.host, auth.port)


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
