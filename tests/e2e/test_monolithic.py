"""`gatehouse run all` (what `make run` does), driven only through the gateway."""

from __future__ import annotations

import pytest

from .conftest import DEMO_PASSWORD, Processes, free_port, user_flow, wait_ready

pytestmark = pytest.mark.e2e


async def test_the_whole_flow_in_monolithic_mode(processes: Processes) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "ADMIN", "AUTHORS", "REALTIME", "AUTH")}
    env: dict[str, str | None] = {f"GATEHOUSE_{k}_PORT": str(v) for k, v in ports.items()}
    env |= {"GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD, "GATEHOUSE_DATA_DIR": ".data"}
    # embedded defaults only: nothing outside the process
    env |= dict.fromkeys(("DATABASE_URL", "REDIS_URL", "AMQP_URL", "OIDC_ISSUER"))
    processes.start("all", ["run", "all"], env)
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    await wait_ready(processes, f"{gateway}/readyz")
    await user_flow([gateway], "Ursula K. Le Guin")
    assert (processes.folder / ".data" / "authors.db").exists()
