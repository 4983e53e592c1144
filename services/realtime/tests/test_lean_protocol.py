"""The lean uvicorn protocol (lean_protocol.py): the same behaviour as uvicorn's own
with less held per idle socket. Memory itself is measured in bench/realtime.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import websockets

from gatehouse.common.events import CloudEvent, InMemoryEventBus
from gatehouse.realtime.lean_protocol import _Gate, _Inbox

AUTHOR = "00000000-0000-4000-8000-00000000000b"
PAD = "x" * 32_000


def big(sequence: int) -> CloudEvent:
    return CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.updated",
        subject=AUTHOR,
        data={"id": AUTHOR, "pad": PAD},
        sequence=sequence,
    )


async def test_a_client_that_stops_reading_is_closed_1013_the_others_get_everything(
    issuer: Any, start_realtime: Any
) -> None:
    """Write pauses of the transport (the protocol's gate) hold a slow client's sends
    until its send queue fills; then it is closed with 1013 once it reads again."""
    bus = InMemoryEventBus()
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with (
        start_realtime(bus=bus, send_queue_size=4, close_timeout=10) as rt,
        websockets.connect(rt.ws_url, additional_headers=headers) as fast,
        websockets.connect(rt.ws_url, additional_headers=headers, max_queue=1) as slow,
    ):
        for ws in (fast, slow):
            await ws.send('{"id": 1, "op": "subscribe", "channel": "authors"}')
            assert json.loads(await ws.recv())["ok"] is True
        received = 0
        for sequence in range(1, 801):  # ~25 MB: more than loopback buffers hold
            await bus.publish(big(sequence))
            while received < sequence:
                json.loads(await asyncio.wait_for(fast.recv(), 5))
                received += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(slow.recv(), 10)
    assert received == 800
    assert slow.close_code == 1013


async def test_the_inbox_keeps_order_and_survives_a_cancelled_reader() -> None:
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait(3)
    assert await waiting == 3


async def test_a_cancelled_sender_does_not_release_the_others_from_the_gate() -> None:
    gate = _Gate()
    await gate.wait()  # open: no wait
    gate.clear()
    first, second = asyncio.create_task(gate.wait()), asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert not second.done()
    gate.set()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
