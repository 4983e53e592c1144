"""Serving an ASGI app with uvicorn on a free loopback port, inside a test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn

from gatehouse.common.types import ASGIApp


def bind_loopback() -> socket.socket:
    """A TCP socket bound to a free loopback port, not yet listening.

    Binding first reserves the port (no race with other tests); a bound socket that
    never listens is also a reliable "connection refused" address.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns the signals
        yield


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp,
    *,
    sock: socket.socket | None = None,
    startup_timeout: float = 10,
    **uvicorn_options: Any,
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL.

    The server runs in the current event loop with lifespan ``on`` and leaves
    signals and logging configuration alone; ``uvicorn_options`` go to
    ``uvicorn.Config``. Pass ``sock`` (from :func:`bind_loopback`) when the app
    must know its port before it is built. The server is shut down, its lifespan
    completed, when the block exits.
    """
    sock = sock or bind_loopback()
    options: dict[str, Any] = {"log_config": None, "log_level": "warning", "lifespan": "on"}
    server = _Server(uvicorn.Config(app, **{**options, **uvicorn_options}))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(startup_timeout):
            await _started(server, task)
        host, port = sock.getsockname()
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start (see its log)")
        await asyncio.sleep(0.005)
