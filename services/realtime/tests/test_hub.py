"""The hub with in-memory transports (a real implementation of the Transport port)."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import REGISTRY

from gatehouse.common.events import CloudEvent
from gatehouse.realtime.frames import TextMessage
from gatehouse.realtime.history import History
from gatehouse.realtime.hub import TRY_AGAIN_LATER, Connection, Hub
from gatehouse.realtime.intake import Intake


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

    def send_now(self, message: TextMessage) -> bool:
        if not self._flowing.is_set():
            return False
        self.received.append(json.loads(message.text))
        return True

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.close_requested = code
        await self._flowing.wait()  # like uvicorn: a paused transport blocks the close frame

    def resume(self) -> None:
        self._flowing.set()


def dropped() -> float:
    return REGISTRY.get_sample_value("gatehouse_realtime_slow_consumers_dropped_total") or 0.0


AUTHOR_7 = "00000000-0000-4000-8000-000000000007"


def intake_of(hub: Hub) -> Intake:
    return Intake(hub, History(size=100, ttl=60, max_events=1000), remember_ids=100)


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
    channels = [(everything, "authors"), (one_author, f"authors.{AUTHOR_7}"), (other, "books")]
    for transport, channel in channels:
        conn = Connection(transport, queue_size=8)
        hub.add(conn)
        hub.subscribe(conn, channel)

    intake_of(hub).receive(author_created(AUTHOR_7))
    await settle()

    assert [m["channel"] for m in everything.received] == ["authors"]
    assert [m["channel"] for m in one_author.received] == [f"authors.{AUTHOR_7}"]
    assert everything.received[0]["type"] == "event"
    assert everything.received[0]["event"]["data"] == {"id": AUTHOR_7, "name": "Ada"}  # type: ignore[index]
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

    intake = intake_of(hub)
    for n in range(20):
        intake.receive(author_created(str(n)))
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
    hub.subscribe(conn, f"authors.{AUTHOR_7}")

    hub.remove(conn)

    assert hub.subscribers("authors") == 0
    assert hub.subscribers(f"authors.{AUTHOR_7}") == 0
    assert hub.broadcast("authors", "{}") == 0


async def test_close_all_closes_every_connection_with_the_code() -> None:
    hub = Hub()
    transports = [MemoryTransport() for _ in range(3)]
    for transport in transports:
        hub.add(Connection(transport, queue_size=4))

    await asyncio.wait_for(hub.close_all(1012), 1)

    assert [t.close_requested for t in transports] == [1012, 1012, 1012]


async def test_a_message_is_never_written_past_older_queued_ones() -> None:
    """The transport takes writes again while older messages still wait for the writer
    task: a new broadcast goes behind them, not straight to the socket."""
    hub = Hub()
    transport = MemoryTransport(stalled=True)
    conn = Connection(transport, queue_size=8)
    hub.add(conn)
    hub.subscribe(conn, "authors")
    hub.broadcast("authors", '{"n": 1}')  # the transport is paused: queued
    assert conn.backlog == 1
    transport.resume()  # the writer task has not run yet
    hub.broadcast("authors", '{"n": 2}')
    assert transport.received == []
    await settle()
    assert transport.received == [{"n": 1}, {"n": 2}]
    assert conn.backlog == 0
