"""A real realtime process dying under proxied WebSockets: clients are told to reconnect.

The upstream is ``gatehouse run realtime`` (embedded profile), killed with SIGKILL,
so its sockets vanish without a close frame, as when a pod or its node dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gatehouse.testing import TestIssuer, bind_loopback

from .conftest import config_for

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
RESTARTING, TRY_AGAIN_LATER = 1012, 1013


@pytest.fixture
async def realtime(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[Realtime]:
    """``gatehouse run realtime`` on a free port, ready."""
    with bind_loopback() as sock:
        port = sock.getsockname()[1]
    process = Realtime(_start(issuer, port, tmp_path), f"http://127.0.0.1:{port}", tmp_path)
    try:
        await process.ready()
        yield process
    finally:
        process.stop()


@dataclass
class Realtime:
    process: subprocess.Popen[bytes]
    url: str
    folder: Path

    def log(self) -> str:
        return (self.folder / "realtime.log").read_text(errors="replace")

    async def ready(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert self.process.poll() is None, self.log()
                try:
                    if (await client.get(f"{self.url}/readyz", timeout=2)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        pytest.fail(f"realtime not ready\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _start(issuer: TestIssuer, port: int, folder: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GATEHOUSE_PROFILE": "embedded",
        "GATEHOUSE_REALTIME_PORT": str(port),
        "GATEHOUSE_DATA_DIR": str(folder / ".data"),
        "OIDC_ISSUER": issuer.issuer_url,
    }
    for name in ("AMQP_URL", "KEYCLOAK_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(name, None)
    with (folder / "realtime.log").open("wb") as log:
        return subprocess.Popen(
            [GATEHOUSE, "run", "realtime"], env=env, stdout=log, stderr=subprocess.STDOUT
        )


async def _closed(ws: ClientConnection) -> tuple[int, str]:
    """Read until the gateway closes the socket: its close code and reason."""
    try:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        frame = closed.rcvd
    assert frame is not None, "closed without a close frame (1006)"
    return frame.code, frame.reason


async def test_realtime_dying_closes_clients_with_1012_and_a_reason(
    start_gateway, issuer, realtime
) -> None:
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config_for(realtime.url)) as url:
        ws_url = url.replace("http://", "ws://") + "/ws"
        async with connect(ws_url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"id": "1", "op": "subscribe", "channel": "authors"}))
            await asyncio.wait_for(ws.recv(), 10)  # the socket is live through both hops
            realtime.kill()
            code, reason = await _closed(ws)
        assert code == RESTARTING
        assert "realtime" in reason
        assert "reconnect" in reason
        # While realtime is down, a handshake is accepted and closed with a reason.
        async with connect(ws_url, additional_headers=headers) as again:
            code, reason = await _closed(again)
        assert code in (TRY_AGAIN_LATER, RESTARTING)
        assert "realtime" in reason
