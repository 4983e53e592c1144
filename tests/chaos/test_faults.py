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
import signal
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


async def test_the_relay_holder_killed_mid_backlog_hands_over_without_loss_or_repeat(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """The active relay is frozen while a backlog piles up, let go, and killed while it
    publishes the backlog: the standby takes the lock and publishes the rest; clients
    get every event once, in order (the broker may carry some twice; realtime dedupes)."""
    holder = await cluster.wait_for(cluster.relay_holder, "a relay holds the outbox lock")
    experiment = Experiment(cluster, scale)

    def published_from_backlog(frozen_at: float) -> Any:
        async def any_arrived() -> bool:
            assert experiment.writer is not None
            backlog = {
                i for i, o in experiment.writer.acknowledged().items() if o.started > frozen_at
            }
            return any(r.subject in backlog for s in experiment.subscribers for r in s.received)

        return any_arrived

    async def fault() -> None:
        cluster.signal(holder, signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            await cluster.wait_for(_backlog_of(cluster, scale.backlog), "a backlog", within=120)
        finally:
            cluster.signal(holder, signal.SIGCONT)
        # Killed as soon as a client sees the first event of the backlog: the relay is then
        # publishing it, and has not yet marked the batch sent.
        await cluster.wait_for(published_from_backlog(frozen_at), "the relay draining", 30, 0.005)
        report["unsent_at_kill"] = await cluster.unsent()
        cluster.kill(holder)
        await cluster.wait_for(cluster.relay_holder, "the standby relay taking over", within=30)

    try:
        await experiment.run(fault)
    finally:
        await cluster.restart(holder)
    report["fault"] = f"relay holder killed mid-backlog ({scale.backlog} events)"
    _judge(experiment, await experiment.verdict(report), report)


def _backlog_of(cluster: Cluster, rows: int) -> Any:
    async def enough() -> bool:
        return await cluster.unsent() >= rows

    return enough


async def test_a_realtime_replica_killed_its_clients_resume_on_the_other(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """realtime-1 killed: its clients reconnect (to the other replica, through the
    other gateway if theirs has no other) and resume with `since`; recovered, they
    miss nothing, get nothing twice, and see everything in order."""

    async def fault() -> None:  # the fault is the kill: the outage must end GRACE after it
        cluster.kill("realtime-1")

    experiment = Experiment(cluster, scale)
    try:
        await experiment.run(fault, after=scale.fault + scale.cool_down)
    finally:
        await cluster.restart("realtime-1")
    report["fault"] = "realtime replica killed"
    violations = await experiment.verdict(report)
    unrecovered = report["resumes_not_recovered"]
    if unrecovered:
        violations.append(f"{unrecovered} resumes answered recovered: false")
    _judge(experiment, violations, report)


async def test_the_database_cut_for_a_while_is_a_503_with_retry_after_and_ends_with_the_cut(
    cluster: Cluster, scale: Scale, report: dict[str, Any]
) -> None:
    """PostgreSQL cut for every process under read and write load: while it is away
    authors answers 503 with ``Retry-After`` (never a 500, never a dropped connection
    that the gateway would turn into a 502); the outage ends GRACE seconds after the
    cut at most; a write answered 201 is in the database once and its event reaches
    every subscriber once, in order; no event for a write that did not commit."""

    async def fault() -> None:
        cluster.proxies.cut("postgres")
        try:
            await asyncio.sleep(scale.fault)
        finally:
            cluster.proxies.restore("postgres")

    experiment = Experiment(cluster, scale, with_reader=True)
    await experiment.run(fault)
    report["fault"] = f"database cut {scale.fault:.0f}s"
    violations = await experiment.verdict(report)
    violations += _not_retry_later(experiment, report)
    _judge(experiment, violations, report)


def _not_retry_later(experiment: Experiment, report: dict[str, Any]) -> list[str]:
    """Failed requests that were not a 503 with a ``Retry-After`` a client can obey."""
    assert experiment.writer is not None
    assert experiment.reader is not None
    failed = [o for o in experiment.writer.outcomes + experiment.reader.outcomes if o.failed]
    wrong = [o for o in failed if o.status != 503 or not (o.retry_after or "").isdigit()]
    report["answered_503_retry_after"] = len(failed) - len(wrong)
    if not wrong:
        return []
    kinds = sorted({f"{o.status or 'no answer'} {o.detail}"[:50] for o in wrong})
    return [f"{len(wrong)} failed requests not 503 + Retry-After: {kinds[:5]}"]
