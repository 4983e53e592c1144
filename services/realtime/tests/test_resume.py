"""Resume and exactly-once delivery over a real WebSocket (Centrifugo's recovery semantics).

Two replicas here are two realtime apps reading one bus, as in split mode; the bus is
the in-memory adapter (the RabbitMQ stream is proven in test_amqp.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gatehouse.common.events import CloudEvent, InMemoryEventBus

AUTHOR = "00000000-0000-4000-8000-00000000000a"


def stamped(sequence: int, author: str = AUTHOR, kind: str = "created") -> CloudEvent:
    """An author event as the relay publishes it: with its ``sequence``."""
    return CloudEvent(
        source="/gatehouse/authors",
        type=f"gatehouse.author.{kind}",
        subject=author,
        data={"id": author, "n": sequence},
        sequence=sequence,
    )


async def publish(bus: InMemoryEventBus, events: list[CloudEvent]) -> None:
    for event in events:
        await bus.publish(event)


async def events_of(client: Any, count: int) -> list[dict[str, Any]]:
    pushed = [await client.receive() for _ in range(count)]
    assert all(p["type"] == "event" for p in pushed), pushed
    return [p["event"] for p in pushed]


async def quiet(client: Any, seconds: float = 0.3) -> bool:
    """True when nothing more arrives (the ping's pong comes first if so)."""
    await asyncio.sleep(seconds)
    pong = await client.call(id="quiet", op="ping")
    return bool(pong == {"id": "quiet", "ok": True, "result": "pong"})


async def test_the_subscribe_reply_gives_the_position_to_resume_from(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    async with start_realtime(bus=bus) as rt, rt.connect(issuer.token()) as client:
        empty = await client.call(id="1", op="subscribe", channel="authors")
        await publish(bus, [stamped(1), stamped(2)])
        await events_of(client, 2)
        books = await client.call(id="2", op="subscribe", channel="books")
    assert empty["result"] == {"channel": "authors"}  # nothing read yet: no position
    assert books["result"] == {"channel": "books", "sequence": 2}


async def test_a_client_that_reconnects_with_since_gets_exactly_what_it_missed(
    issuer: Any, start_realtime: Any
) -> None:
    """Regression: `since` always answered `recovered: false` and replayed nothing."""
    bus = InMemoryEventBus()
    token = issuer.token()
    async with start_realtime(bus=bus) as rt:
        async with rt.connect(token) as client:
            await client.call(id="1", op="subscribe", channel="authors")
            await publish(bus, [stamped(1)])
            (seen,) = await events_of(client, 1)
        missed = [stamped(n) for n in range(2, 102)]
        await publish(bus, missed)
        async with rt.connect(token) as client:
            reply = await client.call(
                id="2", op="subscribe", channel="authors", since=seen["sequence"]
            )
            replayed = await events_of(client, 100)
            await publish(bus, [stamped(102)])
            (live,) = await events_of(client, 1)
            assert await quiet(client)
    assert reply["result"] == {"channel": "authors", "recovered": True, "sequence": 101}
    assert [e["id"] for e in replayed] == [e.id for e in missed]
    assert live["sequence"] == 102


async def test_a_client_resumes_on_another_replica(issuer: Any, start_realtime: Any) -> None:
    bus = InMemoryEventBus()
    token = issuer.token()
    channel = f"authors.{AUTHOR}"
    async with start_realtime(bus=bus) as first, start_realtime(bus=bus) as second:
        async with first.connect(token) as client:
            await client.call(id="1", op="subscribe", channel=channel)
            await publish(bus, [stamped(1)])
            await events_of(client, 1)
        missed = [stamped(n, author=other) for n, other in [(2, AUTHOR), (3, "x"), (4, AUTHOR)]]
        await publish(bus, missed)
        async with second.connect(token) as client:
            reply = await client.call(id="2", op="subscribe", channel=channel, since=1)
            replayed = await events_of(client, 2)
            assert await quiet(client)
    assert reply["result"]["recovered"] is True
    assert [e["sequence"] for e in replayed] == [2, 4]


async def test_a_gap_older_than_the_history_is_not_recovered(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    async with start_realtime(bus=bus, history_size=10) as rt:
        await publish(bus, [stamped(n) for n in range(1, 31)])
        async with rt.connect(issuer.token()) as client:
            await client.call(id="0", op="ping")
            old = await client.call(id="1", op="subscribe", channel="authors", since=5)
            assert await quiet(client)
    assert old["result"] == {
        "channel": "authors",
        "recovered": False,
        "reason": "history_expired",
        "sequence": 30,
    }


async def test_since_ahead_of_this_replica_is_not_recovered(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    async with start_realtime(bus=bus, recovery_wait=0.2) as rt:
        await publish(bus, [stamped(1)])
        async with rt.connect(issuer.token()) as client:
            await client.call(id="0", op="ping")
            ahead = await client.call(id="1", op="subscribe", channel="authors", since=9)
    assert ahead["result"]["recovered"] is False
    assert ahead["result"]["reason"] == "position_unknown"


async def test_a_resume_waits_for_the_event_it_saw_on_a_replica_that_was_ahead(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    async with start_realtime(bus=bus) as rt:
        await publish(bus, [stamped(1)])
        async with rt.connect(issuer.token()) as client:
            await client.call(id="0", op="ping")
            await client.send({"id": "1", "op": "subscribe", "channel": "authors", "since": 3})
            await asyncio.sleep(0.1)
            await publish(bus, [stamped(2), stamped(3), stamped(4)])
            reply = await client.receive()
            (after,) = await events_of(client, 1)
    assert reply["result"]["recovered"] is True
    assert after["sequence"] == 4  # 2 and 3 it had seen elsewhere


async def test_duplicates_from_the_bus_never_reach_a_client_twice(
    issuer: Any, start_realtime: Any
) -> None:
    """Regression: a relay killed mid-backlog, or a database cut that made it publish
    a batch again, gave subscribers duplicates and a sequence going backwards."""
    bus = InMemoryEventBus()
    batch = [stamped(n) for n in range(1, 21)]
    async with start_realtime(bus=bus) as rt, rt.connect(issuer.token()) as client:
        await client.call(id="1", op="subscribe", channel="authors")
        await publish(bus, batch)
        await publish(bus, batch[15:])  # the relay re-publishes what it had not marked sent
        await publish(bus, batch)  # a whole batch again, same ids and sequences
        restamped = [e.model_copy(update={"id": f"other-{e.id}"}) for e in batch[:5]]
        await publish(bus, restamped)  # new ids at old sequences
        await publish(bus, [stamped(21)])
        received = await events_of(client, 21)
        assert await quiet(client)
    assert [e["sequence"] for e in received] == list(range(1, 22))


async def test_since_must_be_a_non_negative_integer(issuer: Any, start_realtime: Any) -> None:
    """Regression: a string `since` was accepted though documented as an integer."""
    async with start_realtime() as rt, rt.connect(issuer.token()) as client:
        replies = [
            await client.call(id=n, op="subscribe", channel="authors", since=since)
            for n, since in enumerate(["41", -1, 1.5, True, 2**63])
        ]
        fine = await client.call(id="ok", op="subscribe", channel="authors", since=0)
    assert [r["error"]["code"] for r in replies] == ["bad_request"] * 5
    assert all("since" in r["error"]["message"] for r in replies)
    assert fine["ok"] is True


async def test_a_channel_of_no_author_is_refused(issuer: Any, start_realtime: Any) -> None:
    """Regression: `authors.<not-a-uuid>` subscriptions were accepted."""
    async with start_realtime() as rt, rt.connect(issuer.token()) as client:
        reply = await client.call(id="1", op="subscribe", channel="authors.not-a-uuid")
        pong = await client.call(id="2", op="ping")
    assert reply["error"]["code"] == "bad_request"
    assert "UUID" in reply["error"]["message"]
    assert pong["result"] == "pong"


async def test_a_new_replica_refills_its_history_from_the_bus(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    await publish(bus, [stamped(n) for n in range(1, 11)])
    async with start_realtime(bus=bus) as rt, rt.connect(issuer.token()) as client:
        reply = await client.call(id="1", op="subscribe", channel="authors", since=4)
        replayed = await events_of(client, 6)
    assert reply["result"]["recovered"] is True
    assert [e["sequence"] for e in replayed] == list(range(5, 11))
