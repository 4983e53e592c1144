"""One running Gatehouse for the contract suite, driven only through its gateway.

The whole system runs as one ``gatehouse run all`` process (the edge path is the
production one: the gateway proxies over loopback HTTP and WebSocket), with the
authors database on the real PostgreSQL. The gateway's rate limits are raised so
that the fuzzer measures the API, not the limiter; everything else is the shipped
``gateway.yaml``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import httpx
import pytest
import yaml

from gatehouse.testing import new_postgres_database
from tests.e2e.conftest import DEMO_PASSWORD, Processes, free_port, login, wait_ready

IDENTITIES = ("admin", "editor", "viewer", "auditor", "nobody")


@dataclass(frozen=True)
class System:
    gateway: str
    realtime: str  # direct URLs of the services, for their readiness only
    authors: str
    auth: str
    folder: Path
    processes: Processes

    @property
    def ws(self) -> str:
        return self.gateway.replace("http://", "ws://", 1) + "/ws"

    async def login(self, username: str) -> str:
        """A fresh access token of a demo identity (the embedded issuer's last 5 minutes)."""
        async with httpx.AsyncClient(base_url=self.gateway, timeout=10) as client:
            return await login(client, username)

    def token(self, username: str) -> str:
        return asyncio.run(self.login(username))


def relaxed_gateway_config(folder: Path, limit: int = 1_000_000) -> Path:
    """The shipped gateway.yaml with every rate-limit policy (and the login limits per
    username and address) raised to ``limit``."""
    shipped = resources.files("gatehouse.gateway").joinpath("gateway.yaml").read_text()
    config = yaml.safe_load(shipped)
    policies = [*config["rate_limits"].values(), *config.get("login", {}).values()]
    for policy in policies:
        if isinstance(policy, dict) and "limit" in policy:
            policy["limit"] = limit
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="package")  # stopped before the next suite starts
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    folder = tmp_path_factory.mktemp("contract")
    ports = {name: free_port() for name in ("gateway", "authors", "realtime", "auth")}
    admin_port = free_port()
    while admin_port in ports.values():  # a port free now may be handed out twice
        admin_port = free_port()
    with new_postgres_database() as database:
        env: dict[str, str | None] = {
            **{f"GATEHOUSE_{name.upper()}_PORT": str(port) for name, port in ports.items()},
            "GATEHOUSE_ADMIN_PORT": str(admin_port),
            "GATEHOUSE_DATA_DIR": str(folder / ".data"),
            "GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD,
            "GATEHOUSE_GATEWAY_CONFIG": str(relaxed_gateway_config(folder)),
            "DATABASE_URL": database,
            **dict.fromkeys(("AMQP_URL", "REDIS_URL", "OIDC_ISSUER", "KEYCLOAK_URL")),
        }
        processes = Processes(folder)
        try:
            processes.start("gatehouse", ["run", "all"], env)
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for url in urls.values():
                asyncio.run(wait_ready(processes, f"{url}/readyz"))
            yield System(**urls, folder=folder, processes=processes)
            processes.assert_alive()
        finally:
            processes.stop_all()


def contract_scale() -> str:
    """``short`` inside ``make test``; ``make contract`` sets ``GATEHOUSE_CONTRACT=full``."""
    return os.environ.get("GATEHOUSE_CONTRACT", "short")
