"""A split-mode Gatehouse on the real PostgreSQL, RabbitMQ and Redis, for fault injection.

Processes (each the installed ``gatehouse`` command): auth, two authors replicas
(HTTP only), two outbox relays (one active, one standing by on the advisory lock),
two realtime replicas and two gateways, each gateway balancing across both authors
and both realtime replicas. Every connection to a shared service goes through a
fault proxy of this suite (:mod:`.proxies`).
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from gatehouse.testing import AmqpNamespace, RedisNamespace
from tests.contract.conftest import relaxed_gateway_config
from tests.e2e.conftest import DEMO_PASSWORD, Processes, wait_ready

from .proxies import ProxyHost

_PICKED: set[int] = set()


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768+ on Linux), never
    one picked before by this run.

    The cluster's own connections (hundreds, through the proxies) take ephemeral
    ports all the time; a service port picked there can be taken by one of them
    between the pick and the bind, or between a kill and the restart.
    """
    while True:
        port = random.randrange(10_000, 32_000)
        if port in _PICKED:
            continue
        _PICKED.add(port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


RELAY_LOCK_KEY = 0x4748414F55544258 & 0x7FFFFFFFFFFFFFFF  # the authors relay's advisory lock


@dataclass
class Cluster(Processes):
    """The processes of the cluster, which a test may kill and restart by name."""

    postgres: str = ""
    amqp: AmqpNamespace | None = None
    redis: RedisNamespace | None = None
    proxies: ProxyHost = field(default_factory=ProxyHost)
    specs: dict[str, tuple[list[str], dict[str, str | None]]] = field(default_factory=dict)
    http: dict[str, str] = field(default_factory=dict)  # process name -> its base URL
    gateways: list[str] = field(default_factory=list)

    # -- processes ---------------------------------------------------------------------

    def start(self, name: str, args: list[str], env: dict[str, str | None]) -> None:
        self.specs[name] = (args, env)
        super().start(name, args, env)

    def pid(self, name: str) -> int:
        return next(p.pid for n, p, _ in self.running if n == name and p.poll() is None)

    def signal(self, name: str, signum: signal.Signals) -> None:
        for n, process, _ in self.running:
            if n == name and process.poll() is None:
                process.send_signal(signum)

    def kill(self, name: str) -> None:
        """SIGKILL: the process dies at once, its sockets closed by the kernel."""
        for n, process, _ in self.running:
            if n == name and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        self.running = [entry for entry in self.running if entry[0] != name]

    async def restart(self, name: str) -> None:
        """Start a killed process again with its first arguments; wait until it is ready."""
        if any(n == name and p.poll() is None for n, p, _ in self.running):
            return
        args, env = self.specs[name]
        super().start(name, args, env)
        if name in self.http:
            await wait_ready(self, f"{self.http[name]}/readyz")
        elif name.startswith("relay"):

            async def connected() -> bool:
                return bool(self.proxies.upstream_ports(f"postgres:{name}"))

            await self.wait_for(connected, f"{name} connected to the database")

    # -- the database, read directly (not through the proxies) ---------------------------

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.postgres.replace("+asyncpg", ""))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def unsent(self) -> int:
        rows = await self.sql("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL")
        return int(rows[0]["n"])

    async def relay_holder(self) -> str | None:
        """The relay process whose session holds the outbox lock (by its proxy's ports)."""
        rows = await self.sql(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
            RELAY_LOCK_KEY,
        )
        ports = {row["client_port"] for row in rows}
        for name in ("relay-1", "relay-2"):
            if ports & self.proxies.upstream_ports(f"postgres:{name}"):
                return name
        return None

    async def wait_for(
        self, condition: Any, what: str, within: float = 60, every: float = 0.1
    ) -> Any:
        """Poll ``condition`` (an async callable) until it returns something truthy."""
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            self.assert_alive()
            value = await condition()
            if value:
                return value
            await asyncio.sleep(every)
        raise AssertionError(f"not within {within:.0f}s: {what}\n{self.logs()}")

    # -- start-up ------------------------------------------------------------------------

    async def boot(self) -> None:
        assert self.amqp is not None
        assert self.redis is not None
        auth_port = free_port()
        common: dict[str, str | None] = {  # the production profile, complete
            "GATEHOUSE_PROFILE": None,
            "OIDC_ISSUER": f"http://127.0.0.1:{auth_port}/realms/gatehouse",
            "GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD,
            "GATEHOUSE_DATA_DIR": ".data",
            "GATEHOUSE_AMQP_EXCHANGE": self.amqp.exchange,
            "GATEHOUSE_RATE_LIMIT_PREFIX": self.redis.prefix,
            "GATEHOUSE_GATEWAY_CONFIG": str(relaxed_gateway_config(self.folder)),
            **dict.fromkeys(("DATABASE_URL", "AMQP_URL", "REDIS_URL", "KEYCLOAK_URL")),
        }
        self.run(["migrate", "authors"], {**common, "DATABASE_URL": self.postgres})
        self.run(["migrate", "auth"], common)  # production services never migrate themselves
        auth = {
            "GATEHOUSE_AUTH_PORT": str(auth_port),
            "GATEHOUSE_AUTH_EMBEDDED_ISSUER": "true",
            "GATEHOUSE_AUTH_KEY_PASSPHRASE": "a chaos passphrase of the signing key",
            "GATEHOUSE_AUTH_PUBLIC_URL": f"http://127.0.0.1:{auth_port}",
        }
        self._service("auth", ["amqp"], {**common, **auth})
        self.http["auth"] = f"http://127.0.0.1:{auth_port}"
        # Alone first: the others would poll its JWKS while it hashes the demo passwords
        # and seals its key, and on a busy 2-core machine it would start last of all.
        await wait_ready(self, f"{self.http['auth']}/readyz")
        for i in (1, 2):
            port = free_port()
            env = {
                **common,
                "GATEHOUSE_AUTHORS_PORT": str(port),
                "GATEHOUSE_AUTHORS_RELAY": "false",
            }
            self._service(f"authors-{i}", ["postgres", "amqp", "redis"], env)
            self.http[f"authors-{i}"] = f"http://127.0.0.1:{port}"
            self._service(f"relay-{i}", ["postgres", "amqp"], common)
            port = free_port()
            self._service(
                f"realtime-{i}", ["amqp"], {**common, "GATEHOUSE_REALTIME_PORT": str(port)}
            )
            self.http[f"realtime-{i}"] = f"http://127.0.0.1:{port}"
        replicas = {
            kind: [self.http[f"{kind}-{i}"] for i in (1, 2)] for kind in ("authors", "realtime")
        }
        upstreams = {
            "GATEHOUSE_UPSTREAM_AUTHORS_URL": ",".join(replicas["authors"]),
            "GATEHOUSE_UPSTREAM_REALTIME_URL": ",".join(replicas["realtime"]),
            "GATEHOUSE_UPSTREAM_AUTH_URL": self.http["auth"],
        }
        for i in (1, 2):
            port = free_port()
            env = {**common, **upstreams, "GATEHOUSE_GATEWAY_PORT": str(port)}
            env["GATEHOUSE_ADMIN_PORT"] = str(free_port())  # /metrics, off the public port
            self._service(f"gateway-{i}", ["redis"], env)
            self.http[f"gateway-{i}"] = f"http://127.0.0.1:{port}"
            self.gateways.append(self.http[f"gateway-{i}"])
        for url in self.http.values():  # as a Kubernetes readiness probe would
            await wait_ready(self, f"{url}/readyz")
        await self.wait_for(self.relay_holder, "a relay holds the outbox lock")

    def _service(self, name: str, needs: list[str], env: dict[str, str | None]) -> None:
        """Start ``gatehouse run <kind>`` with each shared service behind a proxy of its own."""
        assert self.amqp is not None
        assert self.redis is not None
        urls = {"postgres": self.postgres, "amqp": self.amqp.url, "redis": self.redis.url}
        variables = {"postgres": "DATABASE_URL", "amqp": "AMQP_URL", "redis": "REDIS_URL"}
        proxied = {variables[s]: self.proxies.add(f"{s}:{name}", urls[s]) for s in needs}
        self.start(name, ["run", name.split("-")[0]], {**env, **proxied})
