"""The kit's lean uvicorn WebSocket protocol parts (gatehouse.common.ws_protocol): the small
inbox and write gate that stand in for uvicorn's asyncio.Queue and Event per socket.
Both services' protocols are exercised end to end in their own tests."""

from __future__ import annotations

import asyncio
import contextlib

from gatehouse.common.ws_protocol import Gate, Inbox


async def test_the_inbox_keeps_order_and_survives_a_cancelled_reader() -> None:
    inbox = Inbox()
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
    gate = Gate()
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
