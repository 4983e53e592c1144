"""Split mode: one service a process on the real PostgreSQL, Redis and RabbitMQ,
with two gateway and two realtime replicas, driven only through the gateways."""

from __future__ import annotations

import pytest

from .conftest import Processes, auth_env, free_port, production_env, user_flow, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.services]


async def test_the_whole_flow_in_split_mode(
    postgres_url, redis_namespace, amqp_namespace, processes: Processes
) -> None:
    # `processes` comes last so that it is torn down first: a service still running
    # would re-declare the test's stream queue after its clean-up deleted it.
    auth_port = free_port()
    common = production_env(auth_port, postgres_url, redis_namespace, amqp_namespace)
    processes.run(["migrate", "authors"], common)
    processes.run(["migrate", "auth"], common)  # production services never migrate themselves
    processes.start("auth", ["run", "auth"], {**common, **auth_env(auth_port)})
    authors_port = free_port()
    processes.start(
        "authors",
        ["run", "authors"],
        {**common, "GATEHOUSE_AUTHORS_PORT": str(authors_port), "GATEHOUSE_AUTHORS_RELAY": "false"},
    )
    processes.start("relay", ["run", "relay"], common)
    services = [f"http://127.0.0.1:{port}" for port in (auth_port, authors_port)]
    gateways = []
    admin_ports = set()
    while len(admin_ports) < 2:  # distinct: a port free now may be handed out twice
        admin_ports.add(free_port())
    for replica in (1, 2):
        realtime_port, gateway_port = free_port(), free_port()
        processes.start(
            f"realtime-{replica}",
            ["run", "realtime"],
            {**common, "GATEHOUSE_REALTIME_PORT": str(realtime_port)},
        )
        processes.start(
            f"gateway-{replica}",
            ["run", "gateway"],
            {
                **common,
                "GATEHOUSE_GATEWAY_PORT": str(gateway_port),
                "GATEHOUSE_ADMIN_PORT": str(admin_ports.pop()),
                "GATEHOUSE_UPSTREAM_AUTHORS_URL": f"http://127.0.0.1:{authors_port}",
                "GATEHOUSE_UPSTREAM_REALTIME_URL": f"http://127.0.0.1:{realtime_port}",
                "GATEHOUSE_UPSTREAM_AUTH_URL": f"http://127.0.0.1:{auth_port}",
            },
        )
        gateways.append(f"http://127.0.0.1:{gateway_port}")
        services.append(f"http://127.0.0.1:{realtime_port}")
    for server in [*services, *gateways]:  # as a Kubernetes readiness probe would
        await wait_ready(processes, f"{server}/readyz")
    await user_flow(gateways, "Octavia E. Butler")
    processes.assert_alive()
