"""``/ws`` is served before ServiceMiddleware, yet a socket is a request like any other
(issue #6): its log lines carry its request id, and one access line is written when it
closes (``GET /ws``, the close code as status, duration, user, request id)."""

from __future__ import annotations

import logging
from typing import Any

import websockets

from gatehouse.testing import LogLines

from .conftest import Client


async def test_a_socket_writes_one_access_line_with_the_gateways_request_id(
    issuer: Any, start_realtime: Any, log_lines: LogLines
) -> None:
    headers = {"Authorization": f"Bearer {issuer.token(sub='viewer-7')}", "X-Request-ID": "ws-r1"}
    async with start_realtime() as rt:
        async with websockets.connect(rt.ws_url, additional_headers=headers) as ws:
            await Client(ws).call(id="1", op="subscribe", channel="authors")
        await _closed(log_lines)
    (line,) = log_lines.of("gatehouse.access")
    assert line["request_id"] == "ws-r1"
    assert (line["method"], line["route"], line["status"], line["user"]) == (
        "GET",
        "/ws",
        1000,
        "viewer-7",
    )
    assert line["duration_ms"] > 0
    assert line["message"].startswith("GET /ws 1000 ")


async def test_a_refused_socket_logs_its_close_code_and_a_new_request_id(
    start_realtime: Any, log_lines: LogLines
) -> None:
    async with start_realtime() as rt:
        async with rt.connect("not-a-jwt") as client:
            assert await client.close_code() == 1008
        await _closed(log_lines)
    (line,) = log_lines.of("gatehouse.access")
    assert (line["status"], line["user"]) == (1008, None)
    assert len(line["request_id"]) == 32


async def test_lines_written_for_a_socket_carry_its_request_id(
    issuer: Any, start_realtime: Any, log_lines: LogLines
) -> None:
    async with start_realtime(auth_timeout=5) as rt:
        headers = {"X-Request-ID": "ws-r2"}
        async with websockets.connect(rt.ws_url, additional_headers=headers) as ws:
            client = Client(ws)
            await client.call(type="auth", token=issuer.token(sub="viewer-8"))
            logging.getLogger("gatehouse.realtime").info("probe")  # test task: no request
        await _closed(log_lines)
    socket_lines = [x for x in log_lines.lines if x.get("request_id") == "ws-r2"]
    assert [x["logger"] for x in socket_lines] == ["gatehouse.access"]
    assert socket_lines[0]["user"] == "viewer-8"
    probe = [x for x in log_lines.lines if x["message"] == "probe"]
    assert "request_id" not in probe[0]


async def _closed(log_lines: LogLines) -> None:
    """The server writes the line once it has seen the close: wait for it."""
    import asyncio

    for _ in range(200):
        if log_lines.of("gatehouse.access"):
            return
        await asyncio.sleep(0.01)
