"""One chaos experiment: steady clients, one fault, and the verdict in counts.

Subscribers (``Scale.subscribers`` on each gateway, each on its own gateway first)
and a steady writer run before, during and after the fault; then the writer stops,
the system is given time to converge (the outbox drained, every subscriber caught
up), and every property is counted. The verdict lists each violated property with
its count; the figures go to the test's report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.contract.schemas import EVENTS, latest
from tests.e2e.conftest import login

from .cluster import Cluster
from .ledger import Window, drops_outside, error_span, errors_outside, stream_counts
from .workload import Reader, Received, Subscriber, Writer

Fault = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Scale:
    name: str
    fault: float  # seconds a cut lasts
    warm_up: float  # steady state before the fault
    cool_down: float  # load after it (> GRACE, so an outage that outlasts it is seen)
    write_rate: float  # writes per second
    read_rate: float  # reads per second (the Redis fault's gateway load)
    subscribers: int  # per gateway
    backlog: int  # outbox rows piled up before the relay holder dies


SCALES = {
    "short": Scale("short", 2.0, 1.0, 8.0, 10, 40, 2, 50),
    "full": Scale("full", 10.0, 3.0, 12.0, 20, 100, 3, 200),
}
GRACE = 5.0  # seconds after a fault ends during which clients may still see errors
HEALTHY_WITHIN = 90.0  # a test starts once the previous one's faults have healed


@dataclass
class Experiment:
    cluster: Cluster
    scale: Scale
    with_reader: bool = False
    writer: Writer | None = None
    reader: Reader | None = None
    subscribers: list[Subscriber] = field(default_factory=list)
    window: Window | None = None

    async def run(self, fault: Fault, after: float | None = None) -> None:
        """Clients up, warm-up, ``fault`` (it injects, waits, heals), ``after`` seconds of
        steady load (default: the scale's cool-down), converge."""
        async with httpx.AsyncClient(base_url=self.cluster.gateways[0], timeout=10) as client:
            token = await login(client, "admin")
        await self._until_healthy(token)
        gateways = self.cluster.gateways
        for g in range(len(gateways)):
            preferred = gateways[g:] + gateways[:g]
            for k in range(self.scale.subscribers):
                self.subscribers.append(Subscriber(f"s{g + 1}.{k}", preferred, token))
        self.writer = Writer(gateways, token, self.scale.write_rate)
        if self.with_reader:
            self.reader = Reader(gateways, token, self.scale.read_rate)
        listening, writing = asyncio.Event(), asyncio.Event()
        listeners = [asyncio.create_task(s.run(listening)) for s in self.subscribers]
        try:
            await self._until(lambda: all(s.subscribed_at for s in self.subscribers), 30)
            clients = [self.writer.run(writing)] + (
                [self.reader.run(writing)] if self.reader else []
            )
            workload = asyncio.gather(*clients)
            await asyncio.sleep(self.scale.warm_up)
            start = time.monotonic()
            await fault()
            self.window = Window(start, time.monotonic(), GRACE)
            await asyncio.sleep(self.scale.cool_down if after is None else after)
            writing.set()
            await workload
            await self._converge()
        finally:
            listening.set()
            writing.set()
            await asyncio.gather(*listeners, return_exceptions=True)

    async def _until_healthy(self, token: str) -> None:
        """Every gateway answers a read (the previous test's breakers have closed again)."""
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=5) as client:

            async def healthy() -> bool:
                for gateway in self.cluster.gateways:
                    try:
                        response = await client.get(f"{gateway}/api/v1/authors?per_page=1")
                    except httpx.HTTPError:
                        return False
                    if response.status_code != 200:
                        return False
                return True

            await self.cluster.wait_for(healthy, "every gateway serving reads", HEALTHY_WITHIN)

    async def _until(self, condition: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if condition():
                return True
            await asyncio.sleep(0.1)
        return False

    async def _converge(self) -> None:
        """Wait for the outbox to drain and every subscriber to catch up (or a deadline)."""
        assert self.writer is not None
        acknowledged = self.writer.acknowledged()

        def caught_up() -> bool:
            return all(not stream_counts(s, acknowledged).lost for s in self.subscribers)

        deadline = time.monotonic() + 30 + self.scale.fault
        while time.monotonic() < deadline:
            if await self.cluster.unsent() == 0 and caught_up():
                return
            await asyncio.sleep(0.2)

    async def verdict(self, figures: dict[str, Any]) -> list[str]:
        """Each violated property with its count (empty: every property holds)."""
        assert self.writer is not None
        assert self.window is not None
        acknowledged = self.writer.acknowledged()
        violations: list[str] = []
        rows = await self.cluster.sql(
            "SELECT id::text AS id, name FROM authors WHERE name LIKE $1", f"{self.writer.prefix}-%"
        )
        in_db: dict[str, int] = {}
        for row in rows:
            in_db[row["id"]] = in_db.get(row["id"], 0) + 1
        missing = [i for i in acknowledged if in_db.get(i) != 1]
        if missing:
            violations.append(
                f"{len(missing)} acknowledged writes not in the database exactly once"
            )
        unsent = await self.cluster.unsent()
        if unsent:
            violations.append(f"outbox not drained: {unsent} rows unsent")
        reused = await self.cluster.sql(
            "SELECT sequence FROM outbox WHERE sequence IS NOT NULL "
            "GROUP BY sequence HAVING count(*) > 1"
        )
        if reused:
            violations.append(f"{len(reused)} sequence numbers stamped on more than one event")
        violations += self._stream_violations(acknowledged, set(in_db), figures)
        violations += self._error_violations(figures)
        figures.update(
            writes=len(self.writer.outcomes),
            acknowledged=len(acknowledged),
            fault_s=round(self.window.end - self.window.start, 2),
            grace_s=GRACE,
            violations=violations,
        )
        return violations

    def _stream_violations(
        self, acknowledged: dict[str, Any], committed: set[str], figures: dict[str, Any]
    ) -> list[str]:
        totals = {"delivered": 0, "lost": 0, "duplicated": 0, "out_of_order": 0, "phantom": 0}
        totals["nonconforming"] = sum(
            1
            for s in self.subscribers
            for r in s.received
            if latest(EVENTS, r.type).errors(r.event)
        )
        resumes_unrecovered = 0
        for subscriber in self.subscribers:
            counts = stream_counts(subscriber, acknowledged)
            totals["delivered"] += counts.delivered
            totals["lost"] += len(counts.lost)
            totals["duplicated"] += len(counts.duplicated)
            totals["out_of_order"] += len(counts.out_of_order)
            totals["phantom"] += sum(
                1 for r in self._ours(subscriber) if r.subject not in committed
            )
            resumes_unrecovered += sum(1 for _, recovered in subscriber.resumes if not recovered)
        figures.update(events_checked=totals["delivered"], subscribers=len(self.subscribers))
        figures.update({k: v for k, v in totals.items() if k != "delivered"})
        figures["resumes_not_recovered"] = resumes_unrecovered
        names = {
            "lost": "events lost",
            "duplicated": "events delivered twice",
            "out_of_order": "events out of order",
            "phantom": "events for writes not in the database",
            "nonconforming": "events not conforming to the schema of their type",
        }
        return [f"{totals[k]} {text}" for k, text in names.items() if totals[k]]

    def _ours(self, subscriber: Subscriber) -> list[Received]:
        """The events of this experiment's writes (earlier tests' writers used other names)."""
        assert self.writer is not None
        prefix = self.writer.prefix
        return [
            r for r in subscriber.received if str(r.event["data"].get("name")).startswith(prefix)
        ]

    def _error_violations(self, figures: dict[str, Any]) -> list[str]:
        assert self.writer is not None
        assert self.window is not None
        outcomes = self.writer.outcomes + (self.reader.outcomes if self.reader else [])
        late = errors_outside(outcomes, self.window)
        drops = [d for s in self.subscribers for d in drops_outside(s.drops, self.window)]
        figures.update(error_span(outcomes, self.window))
        figures["socket_drops"] = sum(len(s.drops) for s in self.subscribers)
        violations = []
        if late:
            kinds = sorted({f"{o.status or 'no answer'} {o.detail}"[:50] for o in late})
            violations.append(
                f"{len(late)} client errors outside the fault + {GRACE:.0f}s grace: {kinds[:5]}"
            )
        if drops:
            violations.append(f"{len(drops)} socket drops outside the fault + grace")
        return violations
