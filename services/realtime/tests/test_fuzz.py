"""Hypothesis against the envelope: no frame closes the socket, except the documented
limits (oversize frames, abuse of the message rate, a failed first authentication).

The server runs in a thread of its own (its own event loop); hypothesis drives a
synchronous ``websockets`` client, one socket for every example, and after each
frame checks that the socket still answers a ping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from gatehouse.realtime import RealtimeSettings, create_app, uvicorn_ws_options
from gatehouse.testing import TestIssuer, serve, serve_issuer

KEYS = ["id", "op", "type", "channel", "since", "method", "params", "token", "x"]
OPS = ["subscribe", "unsubscribe", "ping", "auth", "call", "explode"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
VALUES = (
    JSON
    | st.sampled_from(OPS)
    | st.sampled_from(["authors", "books", "audit", "authors.x", "authors." + "0" * 36])
    | st.sampled_from(["authors.list", "authors.get", "books.create", "nope"])
)
FRAMES = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6).map(json.dumps),
    st.text(max_size=300),
    JSON.map(json.dumps),
    st.binary(max_size=300),
)


@pytest.fixture(scope="module")
def socket() -> Iterator[ClientConnection]:
    """One authenticated socket to a realtime server running in another thread."""
    ready: dict[str, Any] = {}
    started = threading.Event()

    async def run() -> None:
        async with serve_issuer(TestIssuer(roles=("get-authors",))) as issuer:
            values = {
                "oidc_issuer": issuer.issuer_url,
                "amqp_url": None,
                "message_rate": 100_000.0,
                "message_burst": 100_000,
                "max_subscriptions": 1000,
                "call_timeout": 0.2,
            }
            config = RealtimeSettings(**values)
            async with serve(create_app(config), **uvicorn_ws_options(config)) as url:
                ready["url"] = url.replace("http://", "ws://") + "/ws"
                ready["token"] = issuer.token()
                stop = asyncio.Event()
                ready["stop"] = (asyncio.get_running_loop(), stop)
                started.set()
                await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(30), "the server did not start"
    headers = {"Authorization": f"Bearer {ready['token']}"}
    with connect(ready["url"], additional_headers=headers) as ws:
        yield ws
    loop, stop = ready["stop"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=FRAMES)
def test_no_frame_closes_the_socket(socket: ClientConnection, frame: str | bytes) -> None:
    socket.send(frame)
    socket.send(json.dumps({"id": "probe", "op": "ping"}))
    while True:  # replies to the frame (at most one), pushes, then the probe's pong
        message = json.loads(socket.recv(timeout=5))
        assert isinstance(message, dict)
        if message.get("id") == "probe" and message.get("result") == "pong":
            break
        if message.get("ok") is False:
            assert set(message["error"]) == {"code", "message"}
    with contextlib.suppress(Exception):
        assert socket.close_code is None
