"""Through the real RabbitMQ: live events, resume on another replica, outages, duplicates."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.events import CloudEvent
from gatehouse.testing import TcpProxy

AUTHOR = "00000000-0000-4000-8000-000000000005"


@pytest.mark.services
async def test_an_event_on_the_broker_reaches_a_subscribed_client(
    amqp_namespace: Any, issuer: Any, start_realtime: Any
) -> None:
    publisher = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    author = AUTHOR
    event = CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.created",
        subject=author,
        data={"id": author, "name": "Grace"},
    )
    settings = {"amqp_url": amqp_namespace.url, "amqp_exchange": amqp_namespace.exchange}
    async with start_realtime(**settings) as rt, rt.connect(issuer.token()) as client:
        await client.call(id="1", op="subscribe", channel=f"authors.{author}")
        await publisher.start()
        try:
            await publisher.publish(event)
        finally:
            await publisher.close()
        pushed = await client.receive()
    assert pushed["channel"] == f"authors.{author}"
    assert pushed["event"]["id"] == event.id
    assert pushed["event"]["data"] == {"id": author, "name": "Grace"}


def stamped(sequence: int) -> CloudEvent:
    """An author event as the relay publishes it: with its ``sequence``."""
    return CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.updated",
        subject=AUTHOR,
        data={"id": AUTHOR, "n": sequence},
        sequence=sequence,
    )


@contextlib.asynccontextmanager
async def publisher(amqp_namespace: Any) -> AsyncIterator[AmqpEventBus]:
    bus = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def events_of(client: Any, count: int) -> list[dict[str, Any]]:
    pushed = [await client.receive() for _ in range(count)]
    assert all(p["type"] == "event" for p in pushed), pushed
    return [p["event"] for p in pushed]


async def nothing_more(client: Any) -> bool:
    await asyncio.sleep(0.5)
    return bool((await client.call(id="quiet", op="ping"))["result"] == "pong")


@pytest.mark.services
async def test_a_client_resumes_on_the_other_replica_over_the_broker(
    amqp_namespace: Any, issuer: Any, start_realtime: Any
) -> None:
    settings = {"amqp_url": amqp_namespace.url, "amqp_exchange": amqp_namespace.exchange}
    token = issuer.token()
    async with (
        publisher(amqp_namespace) as bus,
        start_realtime(**settings) as first,
        start_realtime(**settings) as second,
    ):
        async with first.connect(token) as client:
            await client.call(id="1", op="subscribe", channel="authors")
            await bus.publish(stamped(1))
            (seen,) = await events_of(client, 1)
        missed = [stamped(n) for n in range(2, 102)]
        for event in missed:
            await bus.publish(event)
        async with second.connect(token) as client:
            reply = await client.call(
                id="2", op="subscribe", channel="authors", since=seen["sequence"]
            )
            replayed = await events_of(client, 100)
            assert await nothing_more(client)
    assert reply["result"]["recovered"] is True
    assert [e["id"] for e in replayed] == [e.id for e in missed]


@pytest.mark.services
async def test_a_replica_restarted_during_a_broker_outage_loses_nothing(
    amqp_namespace: Any, issuer: Any, start_realtime: Any
) -> None:
    """Regression: a fresh replica whose broker connection dropped before its first
    event read the stream from "next" again and lost what was published meanwhile."""
    token = issuer.token()
    async with (
        publisher(amqp_namespace) as bus,
        TcpProxy.to_url(amqp_namespace.url) as proxy,
    ):
        settings = {
            "amqp_url": proxy.url_for(amqp_namespace.url),
            "amqp_exchange": amqp_namespace.exchange,
        }
        async with start_realtime(**settings) as fresh, fresh.connect(token) as client:
            await client.call(id="1", op="subscribe", channel="authors")
            await proxy.cut()  # before this replica read a single event
            for n in range(1, 21):
                await bus.publish(stamped(n))
            proxy.restore()
            live = await events_of(client, 20)  # it reconnects and reads them all
            await proxy.cut()  # out again; this time the replica is restarted meanwhile
            for n in range(21, 41):
                await bus.publish(stamped(n))
        proxy.restore()
        async with start_realtime(**settings) as restarted, restarted.connect(token) as client:
            reply = await client.call(id="2", op="subscribe", channel="authors", since=20)
            resumed = await events_of(client, 20)
    assert [e["sequence"] for e in live] == list(range(1, 21))
    assert reply["result"]["recovered"] is True
    assert [e["sequence"] for e in resumed] == list(range(21, 41))


@pytest.mark.services
async def test_duplicates_on_the_broker_never_reach_a_client_twice(
    amqp_namespace: Any, issuer: Any, start_realtime: Any
) -> None:
    """Regression: the relay publishes before it marks rows sent, so a relay killed
    mid-backlog or a database cut puts events on the broker twice; nobody deduped."""
    settings = {"amqp_url": amqp_namespace.url, "amqp_exchange": amqp_namespace.exchange}
    batch = [stamped(n) for n in range(1, 51)]
    async with (
        publisher(amqp_namespace) as bus,
        start_realtime(**settings) as rt,
        rt.connect(issuer.token()) as client,
    ):
        await client.call(id="1", op="subscribe", channel=f"authors.{AUTHOR}")
        for event in [*batch, *batch[40:], *batch]:  # a backlog resent, then a whole batch
            await bus.publish(event)
        await bus.publish(stamped(51))
        received = await events_of(client, 51)
        assert await nothing_more(client)
    assert [e["sequence"] for e in received] == list(range(1, 52))
