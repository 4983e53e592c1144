"""One contract for the event bus, run against both adapters: in-memory and RabbitMQ.

What a service relies on: fan-out subscribers see every matching event in order; a
shared queue is a work queue (one subscriber per event, events kept while nobody
consumes); a failing handler's event is delivered again and dead-lettered after
``max_deliveries``; request/reply reaches one server, answers errors as errors,
times out, and says at once when nobody serves the key.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest

from gatehouse.common.bus import bus_from_url
from gatehouse.common.errors import NotFound, RpcTimeout, RpcUnavailable
from gatehouse.common.events import CloudEvent, EventBus
from gatehouse.common.memory_bus import InMemoryEventBus
from gatehouse.testing import AmqpNamespace

MAX_DELIVERIES = 3


@dataclass
class BusUnderTest:
    """Buses of one deployment (one in-memory bus stands for every process of it)."""

    new_bus: Callable[[], Awaitable[EventBus]]
    queue_name: Callable[[str], str]
    dead_letters: Callable[[EventBus, str], Awaitable[int]]


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.services)])
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[BusUnderTest]:
    started: list[EventBus] = []
    if request.param == "memory":
        shared = bus_from_url("memory://", max_deliveries=MAX_DELIVERIES)
        await shared.start()
        started.append(shared)

        async def same_bus() -> EventBus:
            return shared

        yield BusUnderTest(same_bus, lambda name: f"test.{name}", _memory_dead_letters)
    else:
        namespace: AmqpNamespace = request.getfixturevalue("amqp_namespace")

        async def new_bus() -> EventBus:
            bus = bus_from_url(
                namespace.url, exchange=namespace.exchange, max_deliveries=MAX_DELIVERIES
            )
            await bus.start()
            started.append(bus)
            return bus

        async def dead_letters(_: EventBus, queue: str) -> int:
            return await _amqp_dead_letters(namespace.url, queue)

        yield BusUnderTest(new_bus, namespace.queue, dead_letters)
    for bus in started:
        await bus.close()


async def _memory_dead_letters(bus: EventBus, queue: str) -> int:
    assert isinstance(bus, InMemoryEventBus)
    return len(bus.dead_letters(queue))


async def _amqp_dead_letters(url: str, queue: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(f"{queue}.dlq", passive=True)
        count = dlq.declaration_result.message_count
        assert isinstance(count, int)
        return count


def _event(n: int, kind: str = "author.created") -> CloudEvent:
    return CloudEvent(source="/test", type=f"gatehouse.{kind}", data={"n": n})


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _settle() -> None:
    # Not needed for fan-out (a stream reader starts at a timestamp, before it attaches);
    # kept so that a consumer is in place before the first publish in every test.
    await asyncio.sleep(0.3)


async def test_fan_out_subscribers_each_see_every_matching_event_in_order(
    deployment: BusUnderTest,
) -> None:
    publisher, reader = await deployment.new_bus(), await deployment.new_bus()
    authors: asyncio.Queue[CloudEvent] = asyncio.Queue()
    everything: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await reader.subscribe("gatehouse.author.*", authors.put)
    await reader.subscribe("gatehouse.#", everything.put)
    await _settle()
    sent = [_event(0), _event(1, "book.created"), _event(2), _event(3)]
    for event in sent:
        await publisher.publish(event)
    got_all = [await asyncio.wait_for(everything.get(), 10) for _ in sent]
    got_authors = [await asyncio.wait_for(authors.get(), 10) for _ in range(3)]
    assert [e.id for e in got_all] == [e.id for e in sent]
    assert [e.id for e in got_authors] == [sent[0].id, sent[2].id, sent[3].id]
    await asyncio.sleep(0.1)
    assert authors.empty()


async def test_a_fan_out_subscriber_may_replay_the_recent_past_then_catch_up(
    deployment: BusUnderTest,
) -> None:
    publisher, reader = await deployment.new_bus(), await deployment.new_bus()
    witness: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await reader.subscribe("gatehouse.#", witness.put)
    await _settle()
    before = [_event(n) for n in range(5)]
    for event in before:
        await publisher.publish(event)
    replayed: list[str] = []

    async def record(event: CloudEvent) -> None:
        replayed.append(event.id)

    subscription = await reader.subscribe("gatehouse.#", record, replay=60)
    await asyncio.wait_for(subscription.caught_up(), 10)
    assert replayed == [e.id for e in before]
    after = _event(5)
    await publisher.publish(after)
    seen = [await asyncio.wait_for(witness.get(), 10) for _ in range(6)]
    assert [e.id for e in seen] == [e.id for e in [*before, after]]  # no marker, no repeat
    await _eventually(_async(lambda: replayed[-1:] == [after.id]))
    await asyncio.sleep(0.2)
    assert witness.empty()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


async def test_a_shared_queue_gives_each_event_to_one_of_its_subscribers(
    deployment: BusUnderTest,
) -> None:
    name = deployment.queue_name("work")
    publisher = await deployment.new_bus()
    handled: Counter[str] = Counter()
    by_worker: dict[str, int] = {"one": 0, "two": 0}

    def worker(label: str) -> Callable[[CloudEvent], Awaitable[None]]:
        async def handle(event: CloudEvent) -> None:
            handled[event.id] += 1
            by_worker[label] += 1
            await asyncio.sleep(0.01)

        return handle

    for label in by_worker:
        bus = await deployment.new_bus()
        await bus.subscribe("gatehouse.author.*", worker(label), queue=name)
    sent = [_event(n) for n in range(20)]
    for event in sent:
        await publisher.publish(event)

    async def all_handled() -> bool:
        return len(handled) == len(sent)

    await _eventually(all_handled)
    await asyncio.sleep(0.2)  # a second delivery would show up here
    assert set(handled) == {e.id for e in sent}
    assert set(handled.values()) == {1}
    assert by_worker["one"] > 0, by_worker
    assert by_worker["two"] > 0, by_worker


async def test_a_queue_keeps_its_events_while_nobody_consumes(deployment: BusUnderTest) -> None:
    name = deployment.queue_name("later")
    bus = await deployment.new_bus()
    got: asyncio.Queue[CloudEvent] = asyncio.Queue()
    subscription = await bus.subscribe("gatehouse.#", got.put, queue=name)
    await subscription.cancel()
    event = _event(1)
    await bus.publish(event)
    await bus.subscribe("gatehouse.#", got.put, queue=name)
    assert (await asyncio.wait_for(got.get(), 10)).id == event.id


async def test_a_failed_event_is_delivered_again(deployment: BusUnderTest) -> None:
    name = deployment.queue_name("retry")
    bus = await deployment.new_bus()
    attempts: Counter[str] = Counter()
    done: asyncio.Queue[CloudEvent] = asyncio.Queue()

    async def flaky(event: CloudEvent) -> None:
        attempts[event.id] += 1
        if attempts[event.id] == 1:
            raise RuntimeError("first attempt fails")
        await done.put(event)

    await bus.subscribe("gatehouse.#", flaky, queue=name)
    event = _event(1)
    await bus.publish(event)
    assert (await asyncio.wait_for(done.get(), 10)).id == event.id
    assert attempts[event.id] == 2
    assert await deployment.dead_letters(bus, name) == 0


async def test_an_event_that_always_fails_is_dead_lettered_after_max_deliveries(
    deployment: BusUnderTest,
) -> None:
    name = deployment.queue_name("poison")
    bus = await deployment.new_bus()
    attempts: Counter[str] = Counter()

    async def broken(event: CloudEvent) -> None:
        attempts[event.id] += 1
        raise RuntimeError("cannot handle")

    await bus.subscribe("gatehouse.#", broken, queue=name)
    event = _event(1)
    await bus.publish(event)

    async def dead_lettered() -> bool:
        return await deployment.dead_letters(bus, name) == 1

    await _eventually(dead_lettered)
    await asyncio.sleep(0.2)
    assert attempts[event.id] == MAX_DELIVERIES


async def _echo(request: dict[str, Any]) -> Any:
    if request["method"] == "missing":
        raise NotFound("no such author")
    if request["method"] == "crash":
        raise RuntimeError("secret internals")
    return {"echo": request["params"], "request_id": request["context"]["request_id"]}


def _request(method: str = "echo", **params: Any) -> dict[str, Any]:
    return {"method": method, "params": params, "context": {"request_id": "rid-1"}}


async def test_a_request_gets_the_reply_of_its_server(deployment: BusUnderTest) -> None:
    server, caller = await deployment.new_bus(), await deployment.new_bus()
    await server.serve("rpc.test", _echo)
    reply = await caller.request("rpc.test", _request(n=1), timeout=5)
    assert reply == {"ok": True, "result": {"echo": {"n": 1}, "request_id": "rid-1"}}


async def test_errors_are_replies_and_never_carry_the_exception_text(
    deployment: BusUnderTest,
) -> None:
    server, caller = await deployment.new_bus(), await deployment.new_bus()
    await server.serve("rpc.test", _echo)
    missing = await caller.request("rpc.test", _request("missing"), timeout=5)
    assert missing == {
        "ok": False,
        "error": {"code": "not_found", "message": "no such author", "status": 404},
    }
    crash = await caller.request("rpc.test", _request("crash"), timeout=5)
    assert crash["ok"] is False
    assert crash["error"]["code"] == "internal_error"
    assert crash["error"]["status"] == 500
    assert "secret" not in str(crash)


async def test_servers_of_one_key_share_its_requests(deployment: BusUnderTest) -> None:
    caller = await deployment.new_bus()
    served: Counter[str] = Counter()

    def server(label: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def handle(request: dict[str, Any]) -> Any:
            served[label] += 1
            await asyncio.sleep(0.01)
            return request["params"]["n"]

        return handle

    for label in ("one", "two"):
        bus = await deployment.new_bus()
        await bus.serve("rpc.test", server(label))
    replies = await asyncio.gather(
        *(caller.request("rpc.test", _request(n=n), timeout=5) for n in range(20))
    )
    assert [r["result"] for r in replies] == list(range(20))
    assert served["one"] + served["two"] == 20
    assert served["one"] > 0, served
    assert served["two"] > 0, served


async def test_a_request_times_out_when_the_server_is_too_slow(
    deployment: BusUnderTest,
) -> None:
    server, caller = await deployment.new_bus(), await deployment.new_bus()
    release = asyncio.Event()

    async def stuck(request: dict[str, Any]) -> Any:
        await release.wait()

    await server.serve("rpc.test", stuck)
    started = time.monotonic()
    with pytest.raises(RpcTimeout) as raised:
        await caller.request("rpc.test", _request(), timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 3
    assert raised.value.code == "rpc_timeout"
    release.set()


async def test_a_request_nobody_serves_fails_at_once(deployment: BusUnderTest) -> None:
    server, caller = await deployment.new_bus(), await deployment.new_bus()
    started = time.monotonic()
    with pytest.raises(RpcUnavailable) as raised:
        await caller.request("rpc.nobody", _request(), timeout=5)
    assert raised.value.code == "rpc_unavailable"
    subscription = await server.serve("rpc.gone", _echo)
    assert (await caller.request("rpc.gone", _request(), timeout=5))["ok"] is True
    await subscription.cancel()

    async def refused() -> bool:
        try:
            await caller.request("rpc.gone", _request(), timeout=5)
        except RpcUnavailable:
            return True
        return False

    await _eventually(refused)
    assert time.monotonic() - started < 5, "a missing callee must not cost the timeout"
