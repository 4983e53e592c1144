"""The realtime service as its own process (`gatehouse run realtime`), as it is deployed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    ws_url: str
    process: asyncio.subprocess.Process


@pytest.fixture
async def realtime_process(issuer: Any, tmp_path: Path) -> AsyncIterator[Process]:
    """A `gatehouse run realtime` process on the embedded bus."""
    port = free_port()
    env = {
        **os.environ,
        "GATEHOUSE_PROFILE": "embedded",
        "GATEHOUSE_REALTIME_PORT": str(port),
        "GATEHOUSE_DATA_DIR": str(tmp_path),
        "OIDC_ISSUER": issuer.issuer_url,
        "GATEHOUSE_LOG_JSON": "0",
    }
    env.pop("AMQP_URL", None)
    log = tmp_path / "realtime.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            GATEHOUSE, "run", "realtime", env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        await _wait_ready(process, f"http://127.0.0.1:{port}/readyz", log)
        yield Process(f"ws://127.0.0.1:{port}/ws", process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _wait_ready(process: asyncio.subprocess.Process, url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert process.returncode is None, _tail(log)
            try:
                if (await http.get(url, timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"realtime not ready: {_tail(log)}")


async def test_sigterm_closes_every_client_with_1012(
    issuer: Any, realtime_process: Process
) -> None:
    """Regression: a dying replica closed its clients with 1011 (internal error)
    instead of 1012 (service restart), so they could not tell to reconnect elsewhere."""
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    clients = [
        await websockets.connect(realtime_process.ws_url, additional_headers=headers)
        for _ in range(3)
    ]
    for n, ws in enumerate(clients):
        await ws.send(f'{{"id": {n}, "op": "subscribe", "channel": "authors"}}')
        await asyncio.wait_for(ws.recv(), 5)
    realtime_process.process.send_signal(signal.SIGTERM)
    codes = [await asyncio.wait_for(_close_code(ws), 10) for ws in clients]
    assert codes == [1012, 1012, 1012]


async def _close_code(ws: Any) -> int | None:
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        pass
    return ws.close_code  # type: ignore[no-any-return]
