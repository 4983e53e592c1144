"""The fault proxies of the chaos suite, served by a thread of their own.

Every connection from a Gatehouse process to PostgreSQL, RabbitMQ or Redis goes
through a :class:`~gatehouse.testing.TcpProxy` of this suite (one per process and
service), so a fault is cutting proxies, never touching the shared services. The
proxies live as long as the cluster (several tests), so they run in a background
event loop; tests drive them with plain calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from gatehouse.testing import TcpProxy

T = TypeVar("T")


class ProxyHost:
    """Named TCP proxies (``"<service>:<process>"``, e.g. ``"postgres:relay-1"``)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxies")
        self._thread.start()
        self.proxies: dict[str, TcpProxy] = {}

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def add(self, name: str, url: str) -> str:
        """Start a proxy in front of ``url``'s host and port; the URL to give the process."""
        proxy = TcpProxy.to_url(url)
        self._call(proxy.start())
        self.proxies[name] = proxy
        return proxy.url_for(url)

    def _matching(self, names: tuple[str, ...]) -> list[TcpProxy]:
        """Proxies named exactly, or every one of a service (``"postgres"``) or process."""
        found = [
            proxy
            for key, proxy in self.proxies.items()
            if any(key == n or key.startswith(f"{n}:") or key.endswith(n) for n in names)
        ]
        assert found, f"no proxy matches {names}: {sorted(self.proxies)}"
        return found

    def cut(self, *names: str) -> None:
        """Reset the open connections of these proxies and refuse new ones."""
        for proxy in self._matching(names):
            self._call(proxy.cut())

    def restore(self, *names: str) -> None:
        for proxy in self._matching(names):
            self._loop.call_soon_threadsafe(proxy.restore)

    def upstream_ports(self, name: str) -> frozenset[int]:
        async def read() -> frozenset[int]:
            return self.proxies[name].upstream_ports

        return self._call(read())

    def close(self) -> None:
        for proxy in self.proxies.values():
            self._call(proxy.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
