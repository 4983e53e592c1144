"""uvicorn, the way every Gatehouse process serves an app: the launcher and the tests alike.

:class:`Server` is a uvicorn server with Gatehouse's options (no ``Server`` header,
no proxy headers: services resolve forwarded headers from trusted peers
themselves; no permessage-deflate; logging left to the process), that binds its
own socket so a busy port is an error naming the port's variable, and that turns
a :class:`~gatehouse.common.errors.ConfigurationError` raised in the app's
lifespan into that error instead of uvicorn's traceback and exit.

* The launcher runs several in one loop: :func:`serve_until_signalled`.
* A test runs one in its loop: ``async with running(Server(app, "127.0.0.1", 0)) as url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send

OPTIONS: dict[str, Any] = {
    "log_config": None,
    "lifespan": "on",
    "server_header": False,
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
    # Services believe X-Forwarded-For and X-Request-ID from GATEHOUSE_TRUSTED_PROXIES only;
    # uvicorn trusting loopback would let clients choose their address.
    "proxy_headers": False,
}


class StartupGuard:
    """Pure ASGI wrapper that keeps a lifespan's ConfigurationError for the caller."""

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
            self.error = exc  # said once, by whoever runs the server; uvicorn need not log it
            await send({"type": "lifespan.startup.failed", "message": ""})
            return
        for message in held:
            await send(message)


class Server(uvicorn.Server):
    """One app on one ``host:port``; ``port_setting`` names the variable of that port.

    ``sock`` serves on an already bound socket (tests that need the port before
    the app exists); port ``0`` picks a free one (:attr:`url` tells which).
    ``options`` go to ``uvicorn.Config`` over Gatehouse's defaults.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        port_setting: str = "the port",
        sock: socket.socket | None = None,
        **options: Any,
    ) -> None:
        self.guard = StartupGuard(app)
        self.port_setting = port_setting
        self.sock = sock
        config = uvicorn.Config(self.guard, host=host, port=port, **{**OPTIONS, **options})
        super().__init__(config)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # whoever runs the loop owns the signals
        yield

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket."""
        assert self.sock is not None, "not bound yet"
        host, port = self.sock.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def bind(self) -> socket.socket:
        """Bind the listening socket now; a busy port is a ConfigurationError naming it."""
        if self.sock is None:
            host, port = self.config.host, self.config.port
            try:
                self.sock = _bind(host, port)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    reason = exc.strerror or str(exc)
                    raise ConfigurationError(
                        self.port_setting, f"cannot listen on {host}:{port}: {reason}"
                    ) from None
                raise ConfigurationError(
                    self.port_setting,
                    f"port {port} on {host} is in use by another process; choose another port",
                ) from None
        return self.sock

    async def run_until_stopped(self) -> None:
        """Serve until :attr:`should_exit`; a start-up failure raises what caused it."""
        sock = self.bind()
        try:
            await self.serve(sockets=[sock])
        except SystemExit:  # uvicorn's way to say start-up failed; not a loop-killer here
            if self.guard.error is not None:
                raise self.guard.error from None
            raise RuntimeError(f"server on {self.url} could not start") from None
        finally:
            sock.close()
        if not self.started and self.guard.error is not None:
            raise self.guard.error


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@contextlib.asynccontextmanager
async def running(server: Server, startup_timeout: float = 10) -> AsyncIterator[str]:
    """Run ``server`` in this loop for the block; yield its URL once it has started."""
    server.bind()
    task = asyncio.create_task(server.run_until_stopped())
    try:
        async with asyncio.timeout(startup_timeout):
            await _started([server], [task])
        if not server.started:
            await task  # raises why it did not start
            raise RuntimeError("the server stopped before it started")
        yield server.url
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


async def serve_until_signalled(
    servers: list[Server], on_started: Callable[[], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM. Every port is bound first (a busy one stops all before
    any starts); the first server (the issuer) starts before the others so that they load
    its keys at start-up; one server ending ends them all."""
    for server in servers:
        server.bind()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _stop, servers)
    tasks = [asyncio.create_task(servers[0].run_until_stopped())]
    if await _started(servers[:1], tasks):
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
        await asyncio.sleep(0.01)
    return True


def _stop(servers: list[Server]) -> None:
    for server in servers:
        server.should_exit = True
