"""Several uvicorn servers in one event loop, with one signal handler and clear
start-up errors.

A service that cannot start because of its configuration (a database that is not
there, a broker that refuses) raises :class:`ConfigurationError` in its lifespan.
uvicorn would print the whole traceback and exit with status 3; here the error is
caught at the lifespan, reported in one line that names the variable, and
re-raised to the command line, which exits with status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send


class StartupGuard:
    """Pure ASGI wrapper that turns a lifespan ConfigurationError into one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.error: ConfigurationError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # sent below, once we know the cause
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except ConfigurationError as exc:
            self.error = exc
            await send({"type": "lifespan.startup.failed", "message": exc.detail})
            return
        for message in held:
            await send(message)


class Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve`."""

    def __init__(self, app: ASGIApp, host: str, port: int, **extra: Any) -> None:
        self.guard = StartupGuard(app)
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
        super().__init__(uvicorn.Config(self.guard, host=host, port=port, **{**options, **extra}))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def run_until_stopped(self) -> None:
        try:
            await self.serve()
        except SystemExit:  # uvicorn's way to say start-up failed; not a loop-killer here
            if self.guard.error is not None:
                raise self.guard.error from None
            raise RuntimeError(f"server on port {self.config.port} could not start") from None


async def serve(servers: list[Server], on_started: Callable[[], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM. The first server (the issuer) starts before the
    others so that they load its keys at start-up; one server ending ends them all."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop, servers)
    tasks = [asyncio.create_task(servers[0].run_until_stopped())]
    if await _started([servers[0]], tasks):
        tasks += [asyncio.create_task(s.run_until_stopped()) for s in servers[1:]]
        if await _started(servers, tasks) and on_started is not None:
            on_started()
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    _stop(servers)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _started(servers: list[Server], tasks: list[asyncio.Task[None]]) -> bool:
    """Wait until every server has started; False as soon as one has ended instead."""
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            return False
        await asyncio.sleep(0.02)
    return True


def _stop(servers: list[Server]) -> None:
    for server in servers:
        server.should_exit = True
