"""Composition of the whole system: the only module that knows every service.

Every run goes the same way, whatever the mode: read the settings of each service
the mode runs (an error names the variable), check them against the profile
(production refuses the defaults of one machine, listing each), and only then
build and serve. One table says how each service is built; ``all`` builds the
four from it with settings that point them at each other and one in-process bus.
Monolithic mode runs the four services as four uvicorn servers in one event loop;
the gateway still proxies to the others over real loopback HTTP and WebSocket, so
the edge path is the production one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from gatehouse.cli.banner import print_banner
from gatehouse.common import tracing
from gatehouse.common.bus import MEMORY_URL, bus_from_url
from gatehouse.common.errors import ConfigurationError, UnsafeForProduction
from gatehouse.common.events import EventBus
from gatehouse.common.logging import setup_logging
from gatehouse.common.server import Server, serve_until_signalled
from gatehouse.common.settings import CommonSettings

log = logging.getLogger("gatehouse.launcher")
_T = TypeVar("_T")
_KEY_PROBLEM = re.compile(r"^(KEYCLOAK_URL|GATEHOUSE_AUTH_KEY_PASSPHRASE) ")
ORDER = ("auth", "authors", "realtime", "gateway")  # the issuer first: the others load its keys
PORT = {name: f"GATEHOUSE_{name.upper()}_PORT" for name in ORDER}
ADMIN = "GATEHOUSE_ADMIN_PORT"


@dataclass(frozen=True)
class Service:
    """How the launcher reads one service's settings and builds its server."""

    settings: Callable[..., CommonSettings]  # keyword overrides -> settings from the environment
    servers: Callable[[Any, EventBus | None], list[Server]]  # settings, shared bus -> servers


def _gateway() -> Service:
    from gatehouse.gateway.app import create_app
    from gatehouse.gateway.settings import GatewaySettings

    def servers(settings: GatewaySettings, bus: EventBus | None) -> list[Server]:
        """The public port with the gateway's wire limits, and the admin port (/metrics)."""
        app = create_app(settings)
        public = app.server_options()
        return [
            Server(app, settings.host, settings.port, port_setting=PORT["gateway"], **public),
            Server(app.admin, settings.admin_bind(), settings.admin_port, port_setting=ADMIN),
        ]

    return Service(GatewaySettings, servers)


def _authors() -> Service:
    from gatehouse.authors.app import create_app
    from gatehouse.authors.settings import AuthorsSettings

    def servers(settings: AuthorsSettings, bus: EventBus | None) -> list[Server]:
        app = create_app(settings, bus=bus)
        return [Server(app, settings.host, settings.port, port_setting=PORT["authors"])]

    return Service(AuthorsSettings, servers)


def _realtime() -> Service:
    from gatehouse.realtime.app import create_app
    from gatehouse.realtime.server import uvicorn_ws_options
    from gatehouse.realtime.settings import RealtimeSettings

    def servers(settings: RealtimeSettings, bus: EventBus | None) -> list[Server]:
        app = create_app(settings, bus=bus)
        options = uvicorn_ws_options(settings)
        return [Server(app, settings.host, settings.port, port_setting=PORT["realtime"], **options)]

    return Service(RealtimeSettings, servers)


def _auth() -> Service:
    from gatehouse.auth.app import create_app
    from gatehouse.auth.settings import AuthSettings

    def servers(settings: AuthSettings, bus: EventBus | None) -> list[Server]:
        app = create_app(settings, bus=bus)  # the admin API's gatehouse.user.* events
        return [Server(app, settings.host, settings.port, port_setting=PORT["auth"])]

    return Service(AuthSettings, servers)


# Imported on demand: `gatehouse run gateway` never loads SQLAlchemy or the auth service.
SERVICES: dict[str, Callable[[], Service]] = {
    "gateway": _gateway,
    "authors": _authors,
    "realtime": _realtime,
    "auth": _auth,
}


def read_settings(mode: str) -> dict[str, CommonSettings]:
    """The settings of every service ``mode`` runs, by service name (nothing starts)."""
    if mode == "relay":
        return {"relay": _relay_settings()}
    if mode != "all":
        return {mode: SERVICES[mode]().settings()}
    auth = _auth().settings()
    issuer = auth.issuer()
    settings: dict[str, CommonSettings] = {"auth": auth}
    for name in ("authors", "realtime"):
        settings[name] = SERVICES[name]().settings(oidc_issuer=issuer)
    upstreams = {
        f"upstream_{name}_url": f"http://{s.host}:{getattr(s, 'port', 0)}"
        for name, s in settings.items()
    }
    settings["gateway"] = _gateway().settings(oidc_issuer=issuer, **upstreams)
    return settings


def _relay_settings() -> CommonSettings:
    from gatehouse.authors.settings import AuthorsSettings

    class RelaySettings(AuthorsSettings):
        verifies_tokens = False  # it reads the outbox and publishes; no token reaches it

    return RelaySettings()


def check_profile(mode: str, settings: dict[str, CommonSettings]) -> None:
    """Refuse a production start while any service keeps a default of one machine."""
    problems: list[str] = []
    for each in settings.values():
        if each.production:
            problems += [p for p in each.production_problems() if p not in problems]
    if mode == "relay" and not getattr(settings["relay"], "amqp_url", None):
        # Whatever the profile: an in-process bus in a process of its own reaches nobody.
        raise ConfigurationError(
            "AMQP_URL", "the standalone relay publishes to RabbitMQ; without it every event is lost"
        )
    if problems:
        raise UnsafeForProduction(problems)


def prepare(mode: str) -> dict[str, CommonSettings]:
    """Settings read, logging set up, profile checked: everything before anything starts."""
    os.environ.setdefault("GATEHOUSE_PROFILE", "embedded" if mode == "all" else "production")
    settings = read_settings(mode)
    first = next(iter(settings.values()))
    setup_logging(first.log_level, json_logs=first.log_json)
    check_profile(mode, settings)
    return settings


def run(mode: str) -> None:
    settings = prepare(mode)
    try:
        if mode == "relay":
            _run(_run_relay(settings["relay"]))
        elif mode == "all":
            _run(_run_all(settings))
        else:
            _run(serve_until_signalled(SERVICES[mode]().servers(settings[mode], None)))
    finally:
        tracing.shutdown()  # export the spans still buffered


async def _run_all(settings: dict[str, CommonSettings]) -> None:
    from gatehouse.auth.demo import demo_credentials
    from gatehouse.authors.migrations import migrate

    authors: Any = settings["authors"]
    await migrate(authors.sqlalchemy_url())
    bus = bus_from_url(MEMORY_URL)  # one in-process bus shared by authors and realtime
    servers = [s for name in ORDER for s in SERVICES[name]().servers(settings[name], bus)]
    auth: Any = settings["auth"]
    credentials = demo_credentials(auth)  # before auth starts: it knows if it was new
    gateway = settings["gateway"]

    def announce() -> None:
        shown = credentials.password if credentials.newly_generated else None
        print_banner(gateway, shown, credentials.path)

    await serve_until_signalled(servers, on_started=announce)


async def _run_relay(settings: Any) -> None:
    from gatehouse.authors.adapters.database import check_reachable, create_engine
    from gatehouse.authors.entrypoints.relay import run_relay
    from gatehouse.authors.migrations import SCRIPTS

    engine = create_engine(settings.sqlalchemy_url())
    try:  # an unmigrated outbox is one line naming the command, not a retry loop
        await check_reachable(engine)
        await SCRIPTS.require_current(engine, "DATABASE_URL")
    finally:
        await engine.dispose()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run_relay(settings, stop)


def migrate(service: str) -> None:
    """Upgrade the database of ``service`` (``authors`` or ``auth``) to the newest schema."""
    upgrade = {"authors": _migrate_authors, "auth": _migrate_auth}[service]
    settings = SERVICES[service]().settings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    _run(upgrade(settings))
    log.info("the %s database is at the newest schema", service)


def rotate_keys(activate_in: float | None) -> None:
    """Add a signing key to the embedded issuer's database (``gatehouse auth rotate-keys``)."""
    from gatehouse.auth.settings import AuthSettings
    from gatehouse.auth.signing_keys import rotate_signing_keys

    os.environ.setdefault("GATEHOUSE_PROFILE", "production")  # as `gatehouse run auth`
    settings = AuthSettings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    # Of the service's production checks, those about the issuer and its keys.
    problems = [p for p in settings.production_problems() if _KEY_PROBLEM.search(p)]
    if settings.production and problems:
        raise UnsafeForProduction(problems)
    added = _run(rotate_signing_keys(settings, activate_in))
    when = datetime.fromtimestamp(added.activates_at, UTC).isoformat(timespec="seconds")
    print(f"added signing key {added.kid}; it signs from {when} on")


def create_user(username: str, roles: list[str], password: str) -> None:
    """Add a user to the embedded issuer's database (``gatehouse auth create-user``)."""
    from gatehouse.auth.admin.bootstrap import create_user as add
    from gatehouse.auth.admin.schemas import AdminNewUser
    from gatehouse.auth.settings import AuthSettings

    os.environ.setdefault("GATEHOUSE_PROFILE", "production")  # as `gatehouse run auth`
    settings = AuthSettings()
    setup_logging(settings.log_level, json_logs=settings.log_json)
    new = AdminNewUser(username=username, password=password, roles=roles)
    row = _run(add(settings, new))
    held = ", ".join(row.user.roles) or "no role"
    print(f"created user {row.user.username} ({held})")


async def _migrate_authors(settings: Any) -> None:
    from gatehouse.authors.adapters.database import check_reachable, create_engine
    from gatehouse.authors.migrations import SCRIPTS

    engine = create_engine(settings.sqlalchemy_url())
    try:
        await check_reachable(engine)
        await SCRIPTS.migrate(engine)
    finally:
        await engine.dispose()


async def _migrate_auth(settings: Any) -> None:
    from gatehouse.auth.database import check_reachable, create_engine
    from gatehouse.auth.migrations import SCRIPTS

    engine = create_engine(settings.sqlalchemy_url(), setting=settings.database_setting())
    try:
        await check_reachable(engine, settings.database_setting())
        await SCRIPTS.migrate(engine)
    finally:
        await engine.dispose()


def _run(main: Coroutine[Any, Any, _T]) -> _T:
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.Runner()
    with runner:
        return runner.run(main)
