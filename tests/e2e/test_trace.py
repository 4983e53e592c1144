"""One trace across the processes of split mode: a POST through the gateway, the authors
request that writes the change, the relay that publishes its event to RabbitMQ, and the
realtime replica that consumes it. Every process exports OTLP to a collector the test runs."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gatehouse.testing import CollectedSpan, OtlpCollector, serve

from .conftest import Processes, auth_env, free_port, login, production_env, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.services]


async def test_a_post_through_the_gateway_is_one_trace_to_realtimes_consumer(
    postgres_url, redis_namespace, amqp_namespace, processes: Processes
) -> None:
    collector = OtlpCollector()
    async with serve(collector) as otlp:
        gateway = await _start_split_mode(
            processes, otlp, postgres_url, redis_namespace, amqp_namespace
        )
        async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
            token = await login(client, "editor")
            created = await client.post(
                "/api/v1/authors",
                json={"name": "Samuel R. Delany"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert created.status_code == 201, created.text
        trace = await _trace_through_realtime(collector, processes)
    (request,) = [s for s in trace if s.name == "POST /v1/authors" and s.kind == s.SERVER]
    (publish,) = [s for s in trace if s.kind == s.PRODUCER]
    (consume,) = [s for s in trace if s.kind == s.CONSUMER]
    assert (request.service, publish.service) == ("gatehouse-authors", "gatehouse-authors")
    assert publish.parent_span_id == request.span_id
    assert consume.service == "gatehouse-realtime"
    assert consume.parent_span_id == publish.span_id
    (edge,) = [s for s in trace if s.service == "gatehouse-gateway" and s.kind == s.SERVER]
    (call,) = [s for s in trace if s.service == "gatehouse-gateway" and s.kind == s.CLIENT]
    assert request.parent_span_id == call.span_id  # authors continues the gateway's call
    assert edge.parent_span_id == ""  # the client sent no trace: the gateway began it
    processes.assert_alive()


async def _trace_through_realtime(
    collector: OtlpCollector, processes: Processes, within: float = 30.0
) -> list[CollectedSpan]:
    """The trace of the POST, once each process has exported its span of it."""
    async with asyncio.timeout(within):
        while True:
            for spans in collector.traces().values():
                names = {(s.service, s.kind) for s in spans}
                if any(s.name == "POST /v1/authors" for s in spans) and names >= {
                    ("gatehouse-gateway", CollectedSpan.SERVER),
                    ("gatehouse-authors", CollectedSpan.PRODUCER),  # the relay's own export
                    ("gatehouse-realtime", CollectedSpan.CONSUMER),
                }:
                    return spans
            processes.assert_alive()
            await asyncio.sleep(0.2)


async def _start_split_mode(
    processes: Processes, otlp: str, postgres_url, redis_namespace, amqp_namespace
) -> str:
    """auth, authors, the relay, realtime and the gateway, a process each; the gateway's URL."""
    ports: set[int] = set()
    while len(ports) < 5:  # distinct: a port free now may be handed out twice
        ports.add(free_port())
    auth_port, authors_port, realtime_port, gateway_port, admin_port = ports
    common = {
        **production_env(auth_port, postgres_url, redis_namespace, amqp_namespace),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
        "OTEL_SERVICE_NAME": None,
    }
    processes.run(["migrate", "authors"], common)
    processes.run(["migrate", "auth"], common)
    processes.start("auth", ["run", "auth"], {**common, **auth_env(auth_port)})
    authors = {"GATEHOUSE_AUTHORS_PORT": str(authors_port), "GATEHOUSE_AUTHORS_RELAY": "false"}
    processes.start("authors", ["run", "authors"], {**common, **authors})
    processes.start("relay", ["run", "relay"], common)
    realtime = {"GATEHOUSE_REALTIME_PORT": str(realtime_port)}
    processes.start("realtime", ["run", "realtime"], {**common, **realtime})
    upstreams = {
        "GATEHOUSE_UPSTREAM_AUTHORS_URL": f"http://127.0.0.1:{authors_port}",
        "GATEHOUSE_UPSTREAM_REALTIME_URL": f"http://127.0.0.1:{realtime_port}",
        "GATEHOUSE_UPSTREAM_AUTH_URL": f"http://127.0.0.1:{auth_port}",
    }
    gateway = {
        "GATEHOUSE_GATEWAY_PORT": str(gateway_port),
        "GATEHOUSE_ADMIN_PORT": str(admin_port),
        **upstreams,
    }
    processes.start("gateway", ["run", "gateway"], {**common, **gateway})
    for port in (auth_port, authors_port, realtime_port, gateway_port):
        await wait_ready(processes, f"http://127.0.0.1:{port}/readyz")
    return f"http://127.0.0.1:{gateway_port}"
