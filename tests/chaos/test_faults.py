"""Faults injected into the split-mode cluster, each judged by counts.

Every test states its property in its docstring. Common to all (see
:mod:`.experiment`): every write answered 201 is in the database exactly once; the
outbox drains; no sequence number is stamped twice; every subscriber receives the
event of every write acknowledged while it was subscribed, once, in ``sequence``
order, and no event of a write that is not in the database; clients see errors only
from the start of the fault to its end plus ``GRACE`` seconds.

Shared services are never stopped: a "cut" resets the connections through this
suite's proxies and refuses new ones; a "kill" is SIGKILL of one process, which is
started again afterwards so the next test has the whole cluster.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from .cluster import Cluster
from .experiment import Experiment, Scale

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.timeout(600)]


def _judge(experiment: Experiment, violations: list[str], report: dict[str, Any]) -> None:
    assert not violations, f"{report['fault']}: " + "; ".join(violations) + f"\nfigures: {report}"


async def test_the_broker_cut_for_a_while_loses_and_repeats_nothing(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """RabbitMQ cut for every process: writes go on (the outbox holds their events);
    when the broker is back every event reaches every subscriber, once, in order."""

    async def fault() -> None:
        cluster.proxies.cut("amqp")
        try:
            await asyncio.sleep(scale.fault)
        finally:
            cluster.proxies.restore("amqp")

    experiment = Experiment(cluster, scale)
    await experiment.run(fault)
    report["fault"] = f"broker cut {scale.fault:.0f}s"
    _judge(experiment, await experiment.verdict(report), report)


async def test_redis_cut_under_gateway_load_is_not_seen_by_clients(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """Redis cut for both gateways under read and write load: the rate limiter fails
    open (the default), so clients see no error at all beyond the grace period."""

    async def fault() -> None:
        cluster.proxies.cut("redis")
        try:
            await asyncio.sleep(scale.fault)
        finally:
            cluster.proxies.restore("redis")

    experiment = Experiment(cluster, scale, with_reader=True)
    await experiment.run(fault)
    report["fault"] = f"redis cut {scale.fault:.0f}s"
    _judge(experiment, await experiment.verdict(report), report)


async def test_an_authors_replica_killed_is_an_outage_of_seconds_at_most(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """authors-1 killed under write load while authors-2 is healthy: readiness and
    balancing route around it, so writes fail at most for GRACE seconds."""
    started = time.monotonic()

    async def fault() -> None:  # the fault is the kill: the outage must end GRACE after it
        cluster.kill("authors-1")

    experiment = Experiment(cluster, scale)
    try:
        await experiment.run(fault, after=scale.fault + scale.cool_down)
    finally:
        await cluster.restart("authors-1")
    report["fault"] = "authors replica killed"
    report["restarted_after_s"] = round(time.monotonic() - started, 1)
    _judge(experiment, await experiment.verdict(report), report)
