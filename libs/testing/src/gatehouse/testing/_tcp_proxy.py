"""A TCP proxy a test owns: the way to take a dependency away without stopping it.

The PostgreSQL, Redis and RabbitMQ of the development machine are shared by every
suite running on it; a test never stops them. To see what a service does when its
database or broker goes, the test points the service at a :class:`TcpProxy` in
front of the real one and cuts the proxy::

    async with TcpProxy("127.0.0.1", 5432) as proxy:
        settings = Settings(DATABASE_URL=proxy.url_for(postgres_url))
        ...
        await proxy.cut()      # open connections reset, new ones refused
        ...
        proxy.restore()        # connections go through again
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

_CHUNK = 65536


class TcpProxy:
    """Forward connections from a free loopback port to ``host:port`` until cut."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.host = "127.0.0.1"
        self.port = 0
        self.connections = 0  # accepted since start, cut or not
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()
        self._upstream_ports: set[int] = set()
        self._cut = False

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy in front of the host and port of ``url`` (not started yet)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"no host and port in {url!r}")
        return cls(parts.hostname, parts.port)

    def url_for(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    @property
    def is_cut(self) -> bool:
        return self._cut

    @property
    def upstream_ports(self) -> frozenset[int]:
        """Local ports of the open connections to the target: the server sees these as the
        client ports (PostgreSQL's ``pg_stat_activity.client_port``), which tells a test
        which server-side session came through this proxy."""
        return frozenset(self._upstream_ports)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Reset every open connection and refuse new ones until :meth:`restore`."""
        self._cut = True
        await self.drop()

    async def drop(self) -> None:
        """Reset every open connection, as a network blip would; new ones go through."""
        tasks = list(self._open)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def restore(self) -> None:
        self._cut = False

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self.drop()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._cut:
            _reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            await self._pipe_both(reader, writer)
        except asyncio.CancelledError:
            _reset(writer)  # a cut: the client sees its connection reset
        finally:
            self._open.discard(task)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        port = int(up_writer.get_extra_info("sockname")[1])
        self._upstream_ports.add(port)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._upstream_ports.discard(port)
            _reset(up_writer)
            _reset(writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once (RST when the transport allows it), not a polite FIN."""
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
