"""The hub with in-memory transports (a real implementation of the Transport port)."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import REGISTRY

from gatehouse.common.events import CloudEvent
from gatehouse.realtime.channels import channels_for
from gatehouse.realtime.hub import TRY_AGAIN_LATER, Connection, Hub


class MemoryTransport:
    """Records what a client would receive; a stalled one never finishes a write."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.received: list[dict[str, object]] = []
        self.close_requested: int | None = None
        self._flowing = asyncio.Event()
        if not stalled:
            self._flowing.set()

    async def send_text(self, data: str) -> None:
        await self._flowing.wait()
        self.received.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.close_requested = code
        await self._flowing.wait()  # like uvicorn: a paused transport blocks the close frame


def dropped() -> float:
    return REGISTRY.get_sample_value("gatehouse_realtime_slow_consumers_dropped_total") or 0.0


def author_created(author_id: str, name: str = "Ada") -> CloudEvent:
    return CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.created",
        subject=author_id,
        data={"id": author_id, "name": name},
    )


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_broadcast_reaches_the_subscribers_of_a_channel_only() -> None:
    hub = Hub()
    everything, one_author, other = MemoryTransport(), MemoryTransport(), MemoryTransport()
    for transport, channel in [(everything, "authors"), (one_author, "authors.7"), (other, "x")]:
        conn = Connection(transport, queue_size=8)
        hub.add(conn)
        hub.subscribe(conn, channel)

    assert hub.publish_event(author_created("7")) == 2
    await settle()

    assert [m["channel"] for m in everything.received] == ["authors"]
    assert [m["channel"] for m in one_author.received] == ["authors.7"]
    assert everything.received[0]["type"] == "event"
    assert everything.received[0]["event"]["data"] == {"id": "7", "name": "Ada"}  # type: ignore[index]
    assert other.received == []


async def test_a_slow_consumer_is_closed_with_1013_and_never_stalls_the_others() -> None:
    hub = Hub()
    fast, slow = MemoryTransport(), MemoryTransport(stalled=True)
    fast_conn = Connection(fast, queue_size=4)
    slow_conn = Connection(slow, queue_size=4, close_timeout=0.05)
    for conn in (fast_conn, slow_conn):
        hub.add(conn)
        hub.subscribe(conn, "authors")
    dropped_before = dropped()

    for n in range(20):
        hub.publish_event(author_created(str(n)))
        await asyncio.sleep(0)  # let the fast writer drain between events

    await asyncio.wait_for(slow_conn.done, 1)
    await settle()
    assert len(fast.received) == 20
    assert slow.close_requested == TRY_AGAIN_LATER
    assert slow_conn.close_code == TRY_AGAIN_LATER
    assert dropped() == dropped_before + 1
    assert not fast_conn.closing


async def test_removing_a_connection_leaves_every_channel() -> None:
    hub = Hub()
    conn = Connection(MemoryTransport(), queue_size=4)
    hub.add(conn)
    hub.subscribe(conn, "authors")
    hub.subscribe(conn, "authors.1")

    hub.remove(conn)

    assert hub.subscribers("authors") == 0
    assert hub.publish_event(author_created("1")) == 0


async def test_close_all_closes_every_connection_with_the_code() -> None:
    hub = Hub()
    transports = [MemoryTransport() for _ in range(3)]
    for transport in transports:
        hub.add(Connection(transport, queue_size=4))

    await asyncio.wait_for(hub.close_all(1012), 1)

    assert [t.close_requested for t in transports] == [1012, 1012, 1012]


def test_author_events_go_to_authors_and_the_authors_own_channel() -> None:
    assert channels_for(author_created("42")) == ["authors", "authors.42"]
    deleted = CloudEvent(source="/gatehouse/authors", type="gatehouse.author.deleted")
    assert channels_for(deleted) == ["authors"]


def test_other_events_reach_no_channel() -> None:
    book = CloudEvent(source="/gatehouse/authors", type="gatehouse.book.created", subject="1")
    assert channels_for(book) == []
    odd_subject = author_created("a/b")
    assert channels_for(odd_subject) == ["authors"]
