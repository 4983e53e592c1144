"""Realtime's own CPU per subscriber of a broadcast, without the kernel's (issue #8).

N real uvicorn WebSocket protocols (realtime's ``LeanWebSocketProtocol``, the handshake
done by a websockets client protocol) on in-memory transports that count and drop what
they are given; a ``Hub`` with a ``Connection`` per socket, all on one channel. Times
``Hub.broadcast`` of an event frame per subscriber:

    shared    as realtime does it: one frame built per broadcast, the same bytes written
              to every socket (the protocol's ``send_now``)
    reference in the same run, the write as it was before issue #8: the protocol's state
              checks, then websockets' ``send_text`` of the UTF-8 text and its
              ``data_to_send`` joined, per socket

The kernel's share (the write system call and loopback delivery, ~8 µs a socket on this
machine) is not in these figures; bench/realtime.py --direct measures the whole.

    .venv/bin/python bench/realtime_broadcast.py [--sockets 10000] [--rounds 20] [--size 600]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import uvicorn
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from gatehouse.realtime.endpoint import AsgiSocket
from gatehouse.realtime.frames import TextMessage
from gatehouse.realtime.hub import Connection, Hub
from gatehouse.realtime.lean_protocol import SEND_NOW, LeanWebSocketProtocol


class DropTransport(asyncio.Transport):
    """Counts the bytes written and drops them."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class PerSocketFraming:
    """The pre-#8 write: websockets frames the text again for every socket."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: LeanWebSocketProtocol) -> None:
        self._protocol = protocol

    def __call__(self, message: TextMessage) -> bool:
        p = self._protocol
        if (
            not p.handshake_complete
            or p.close_sent
            or p.disconnected
            or not p.writable.is_set()
            or p.initial_response is not None
            or p.conn.state is not State.OPEN
        ):
            return False
        p.conn.send_text(message.text.encode())
        p.transport.write(b"".join(p.conn.data_to_send()))
        return True


async def open_sockets(count: int) -> list[LeanWebSocketProtocol]:
    accepted = 0
    done = asyncio.get_running_loop().create_future()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal accepted
        await receive()
        await send({"type": "websocket.accept"})
        accepted += 1
        if accepted == count:
            done.set_result(None)
        await receive()

    config = uvicorn.Config(
        app, ws=LeanWebSocketProtocol, ws_per_message_deflate=False, log_level="warning"
    )
    config.load()
    state = ServerState()
    sockets = []
    for _ in range(count):
        server = LeanWebSocketProtocol(config, state, {})
        server.connection_made(DropTransport())
        client = ClientProtocol(parse_uri("ws://127.0.0.1:8000/ws"))
        client.send_request(client.connect())
        server.data_received(b"".join(client.data_to_send()))
        sockets.append(server)
    await asyncio.wait_for(done, 60)
    for server in sockets:
        server.stop_keepalive()
    return sockets


def hub_of(sockets: list[LeanWebSocketProtocol], shared: bool) -> Hub:
    hub = Hub()
    for server in sockets:
        now = server.scope["extensions"][SEND_NOW] if shared else PerSocketFraming(server)
        conn = Connection(AsgiSocket(server.send, now), queue_size=256)
        hub.add(conn)
        hub.subscribe(conn, "authors")
    return hub


async def run(args: argparse.Namespace) -> None:
    sockets = await open_sockets(args.sockets)
    hubs = {"shared": hub_of(sockets, True), "reference": hub_of(sockets, False)}
    pad = "x" * max(0, args.size - 120)
    text = f'{{"type":"event","channel":"authors","event":{{"id":"n","data":"{pad}","é":1}}}}'
    times: dict[str, list[float]] = {name: [] for name in hubs}
    transports = [s.transport for s in sockets]
    before = sum(t.written for t in transports)  # type: ignore[attr-defined]
    gc.disable()  # a collection in one round would be charged to that round only
    try:
        for _ in range(args.rounds):
            for name, hub in hubs.items():  # alternately: the same machine state for both
                start = time.process_time()
                assert hub.broadcast("authors", text) == args.sockets
                times[name].append((time.process_time() - start) / args.sockets * 1e6)
                await asyncio.sleep(0)
                gc.collect()
    finally:
        gc.enable()
    for server in sockets:  # the peer leaves: each app ends as it would
        server.connection_lost(None)
    await asyncio.gather(*list(sockets[0].tasks))  # the server's tasks: one set for all
    shared, reference = (statistics.median(times[n]) for n in ("shared", "reference"))
    after = sum(t.written for t in transports)  # type: ignore[attr-defined]
    written = (after - before) / (2 * args.rounds * args.sockets)
    print(
        f"{args.sockets} sockets, {len(text.encode())}-byte text ({written:.0f} bytes written "
        f"per socket), median of {args.rounds} rounds, CPU per subscriber: shared frame "
        f"{shared:.2f} µs, reference (per-socket framing) {reference:.2f} µs, "
        f"ratio {shared / reference:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--size", type=int, default=600, help="bytes of the text")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
