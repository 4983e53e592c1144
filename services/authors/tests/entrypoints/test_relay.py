"""The outbox relay: order, sequence, retries, one active relay, wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters import orm
from gatehouse.authors.adapters.cache import NoCache
from gatehouse.authors.adapters.database import create_engine, write_session_factory
from gatehouse.authors.domain.commands import CreateAuthor
from gatehouse.authors.entrypoints.relay import OutboxRelay, run_relay
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messagebus import MessageBus
from gatehouse.authors.service_layer.registry import routes
from gatehouse.authors.service_layer.unit_of_work import SqlAlchemyUnitOfWork
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import CloudEvent, EventBus, InMemoryEventBus
from gatehouse.common.identity import Principal

pytestmark = pytest.mark.timeout(60)


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.02)


TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
EDITOR = RequestContext(Principal("s", "editor", frozenset({"admin"})), traceparent=TRACE)


async def create(engine: AsyncEngine, *names: str) -> None:
    sessions = write_session_factory(engine)
    bus = MessageBus(lambda ctx, _w: SqlAlchemyUnitOfWork(sessions, ctx), routes(NoCache()))
    for name in names:
        await bus.handle(CreateAuthor(name), EDITOR)


async def stamped_rows(engine: AsyncEngine) -> list[tuple[str, int | None, bool]]:
    table = orm.outbox
    async with engine.connect() as conn:
        rows = await conn.execute(select(table).order_by(table.c.id))
        return [(r.payload["data"]["name"], r.sequence, r.sent_at is not None) for r in rows]


async def collect(bus: EventBus) -> list[CloudEvent]:
    received: list[CloudEvent] = []

    async def handler(event: CloudEvent) -> None:
        received.append(event)

    await bus.subscribe("gatehouse.author.#", handler)
    return received


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await task


def failures() -> float:
    value = REGISTRY.get_sample_value(
        "gatehouse_outbox_publish_failures_total", {"service": "authors"}
    )
    return value or 0.0


async def test_events_are_published_in_order_and_stamped(engine: AsyncEngine) -> None:
    bus = InMemoryEventBus()
    received = await collect(bus)
    await create(engine, "A", "B", "C")

    async with running(OutboxRelay(engine, bus)):
        await eventually(lambda: len(received) == 3)

    assert [(e.data["name"], e.sequence) for e in received] == [("A", 1), ("B", 2), ("C", 3)]
    assert await stamped_rows(engine) == [("A", 1, True), ("B", 2, True), ("C", 3, True)]


@pytest.fixture
async def pg_engine(postgres_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def amqp_buses(amqp_namespace: Any) -> AsyncIterator[tuple[AmqpEventBus, AmqpEventBus]]:
    """A publishing bus for the relay and a reading bus for the test, on one test exchange."""
    url, exchange = amqp_namespace.url, amqp_namespace.exchange
    publisher, reader = AmqpEventBus(url, exchange=exchange), AmqpEventBus(url, exchange=exchange)
    await publisher.start()
    await reader.start()
    yield publisher, reader
    await reader.close()
    await publisher.close()


@pytest.mark.services
class _RefusingBus(InMemoryEventBus):
    """Refuses the events of ``refused`` names: ``once`` at their first publish only
    (a broker's nack of one message), else until ``heal()`` (a connection gone)."""

    def __init__(self, refused: set[str], *, once: bool) -> None:
        super().__init__()
        self.refused, self.once = set(refused), once

    def heal(self) -> None:
        self.refused.clear()

    async def publish(self, event: CloudEvent) -> None:
        name = event.data["name"] if isinstance(event.data, dict) else None
        if name in self.refused:
            if self.once:
                self.refused.discard(name)
            raise ConnectionError(f"refused {name}")
        await super().publish(event)


async def test_a_batch_cut_short_is_stamped_to_the_failure_and_resent_with_its_sequences(
    engine: AsyncEngine,
) -> None:
    """The whole batch is published at once; when everything from one event on fails
    (the broker went), the rows before it are stamped and the rest is published again,
    in order, with the same sequences."""
    bus = _RefusingBus({"B", "C"}, once=False)
    received = await collect(bus)
    await create(engine, "A", "B", "C")

    async with running(OutboxRelay(engine, bus, retry_interval=0.01, max_retry_interval=0.05)):
        await eventually(lambda: len(received) == 1)
        before = failures()
        await eventually(lambda: failures() >= before + 2)  # B and C failed again
        assert await stamped_rows(engine) == [
            ("A", 1, True),
            ("B", None, False),
            ("C", None, False),
        ]
        bus.heal()
        await eventually(lambda: len(received) == 3)

    assert [(e.data["name"], e.sequence) for e in received] == [("A", 1), ("B", 2), ("C", 3)]
    assert await stamped_rows(engine) == [("A", 1, True), ("B", 2, True), ("C", 3, True)]


async def test_an_event_refused_before_later_ones_taken_gets_a_later_sequence(
    engine: AsyncEngine,
) -> None:
    """A broker that refuses one event and takes the next ones of the batch: those are
    delivered and stamped, so the refused one (never delivered) goes again with a new,
    higher sequence. Subscribers see every event once, in sequence order; no sequence
    is stamped twice."""
    bus = _RefusingBus({"B"}, once=True)
    received = await collect(bus)
    await create(engine, "A", "B", "C")

    async with running(OutboxRelay(engine, bus, retry_interval=0.01)):
        await eventually(lambda: len(received) == 3)

    assert [(e.data["name"], e.sequence) for e in received] == [("A", 1), ("C", 3), ("B", 4)]
    assert await stamped_rows(engine) == [("A", 1, True), ("B", 4, True), ("C", 3, True)]


async def test_through_rabbitmq_in_sequence_and_nothing_lost_on_failure(
    pg_engine: AsyncEngine, amqp_buses: tuple[AmqpEventBus, AmqpEventBus]
) -> None:
    publisher, reader = amqp_buses
    received = await collect(reader)
    relay = OutboxRelay(pg_engine, publisher, retry_interval=0.05, max_retry_interval=0.2)
    await create(pg_engine, "A", "B")

    async with running(relay):
        await eventually(lambda: len(received) == 2)
        await publisher.close()  # the broker connection is gone: publishing fails
        before = failures()
        await create(pg_engine, "C")
        await eventually(lambda: failures() > before)
        assert (await stamped_rows(pg_engine))[-1] == ("C", None, False)
        await publisher.start()  # back: the relay retries the row it kept
        await eventually(lambda: len(received) == 3)

    assert [(e.data["name"], e.sequence) for e in received] == [("A", 1), ("B", 2), ("C", 3)]
    assert [e.traceparent for e in received] == [TRACE] * 3
    assert await stamped_rows(pg_engine) == [("A", 1, True), ("B", 2, True), ("C", 3, True)]


@pytest.mark.services
async def test_one_relay_is_active_and_a_standby_takes_over(pg_engine: AsyncEngine) -> None:
    bus = InMemoryEventBus()
    received = await collect(bus)
    first, second = (OutboxRelay(pg_engine, bus, standby_interval=0.05) for _ in range(2))

    async with running(first) as stop_first, running(second) as stop_second:
        await eventually(lambda: first.active or second.active)
        await create(pg_engine, "A", "B")
        await eventually(lambda: len(received) == 2)
        leader, standby = (first, second) if first.active else (second, first)
        assert not standby.active
        (stop_first if leader is first else stop_second).set()
        await eventually(lambda: standby.active)
        await create(pg_engine, "C")
        await eventually(lambda: len(received) == 3)

    assert [(e.data["name"], e.sequence) for e in received] == [("A", 1), ("B", 2), ("C", 3)]


@pytest.mark.services
async def test_postgres_notify_wakes_an_idle_relay(pg_engine: AsyncEngine) -> None:
    bus = InMemoryEventBus()
    received = await collect(bus)
    relay = OutboxRelay(pg_engine, bus, poll_interval=60, listen_poll_interval=60)

    async with running(relay):
        await eventually(lambda: relay.active)
        await asyncio.sleep(0.1)  # the relay is idle, waiting for a wake-up
        await create(pg_engine, "A")
        await eventually(lambda: len(received) == 1, within=5)


@pytest.mark.services
async def test_the_standalone_relay_publishes_until_stopped(
    pg_engine: AsyncEngine, amqp_namespace: Any, tmp_path: Path
) -> None:
    reader = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await reader.start()
    try:
        received = await collect(reader)
        settings = AuthorsSettings(
            database_url=pg_engine.url.render_as_string(hide_password=False),
            data_dir=tmp_path,
            amqp_url=amqp_namespace.url,
            amqp_exchange=amqp_namespace.exchange,
        )
        await create(pg_engine, "A")
        stop = asyncio.Event()
        task = asyncio.create_task(run_relay(settings, stop))

        await eventually(lambda: len(received) == 1)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        await reader.close()
    assert await stamped_rows(pg_engine) == [("A", 1, True)]


async def test_the_standalone_relay_refuses_to_start_without_a_broker(
    database_url: str, tmp_path: Path
) -> None:
    settings = AuthorsSettings(database_url=database_url, data_dir=tmp_path, amqp_url=None)

    with pytest.raises(ConfigurationError) as caught:
        await run_relay(settings, asyncio.Event())

    assert caught.value.setting == "AMQP_URL"
