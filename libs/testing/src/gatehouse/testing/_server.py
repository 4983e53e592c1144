"""Serving an ASGI app inside a test's event loop, with the server every process uses."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from gatehouse.common.server import Server, running
from gatehouse.common.types import ASGIApp


def bind_loopback() -> socket.socket:
    """A TCP socket bound to a free loopback port, not yet listening.

    Binding first reserves the port (no race with other tests); a bound socket that
    never listens is also a reliable "connection refused" address.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp,
    *,
    sock: socket.socket | None = None,
    startup_timeout: float = 10,
    **uvicorn_options: Any,
) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port with :class:`gatehouse.common.server.Server`
    (the launcher's server and options); yield its base URL.

    The server runs in the current event loop with lifespan ``on`` and leaves
    signals and logging configuration alone; ``uvicorn_options`` go to
    ``uvicorn.Config`` (``log_level`` defaults to ``warning``). Pass ``sock`` (from
    :func:`bind_loopback`) when the app must know its port before it is built. A
    ``ConfigurationError`` of the app's lifespan is raised here. The server is shut
    down, its lifespan completed, when the block exits.
    """
    options = {"log_level": "warning", **uvicorn_options}
    server = Server(app, "127.0.0.1", 0, sock=sock or bind_loopback(), **options)
    async with running(server, startup_timeout) as url:
        yield url
