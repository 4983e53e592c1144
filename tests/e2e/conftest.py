"""Process management and the user flow shared by the end-to-end suites.

The system runs as real ``gatehouse`` processes (the installed command), talking
over loopback; the tests act only through the gateway, as a client would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

DEMO_PASSWORD = "e2e-demo-password-1"
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    """Starts ``gatehouse`` processes and stops every one of them afterwards."""

    folder: Path
    running: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str | None]) -> None:
        log = self.folder / f"{name}.log"
        full_env = _environment({"GATEHOUSE_LOG_JSON": "0", **env})
        with log.open("wb") as output:
            process = subprocess.Popen(
                [GATEHOUSE, *args],
                env=full_env,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
            )
        self.running.append((name, process, log))

    def run(self, args: list[str], env: dict[str, str | None]) -> None:
        full_env = _environment(env)
        subprocess.run([GATEHOUSE, *args], env=full_env, check=True, cwd=self.folder, timeout=120)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {p.poll()}) ---\n{log.read_text(errors='replace')[-4000:]}"
            for name, p, log in self.running
        )

    def assert_alive(self) -> None:
        dead = [name for name, p, _ in self.running if p.poll() is not None]
        assert not dead, f"processes exited early: {dead}\n{self.logs()}"

    def stop_all(self) -> None:
        for _, process, _ in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process, _ in self.running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _environment(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes``; a None value removes the variable."""
    env = {**os.environ, **{k: v for k, v in changes.items() if v is not None}}
    for name in [k for k, v in changes.items() if v is None]:
        env.pop(name, None)
    return env


def production_env(
    auth_port: int, postgres_url: str, redis_namespace: Any, amqp_namespace: Any
) -> dict[str, str | None]:
    """What every process of split mode reads: the production profile (the default of
    `gatehouse run <service>`), complete, on the test's database, Redis prefix and exchange."""
    return {
        "GATEHOUSE_PROFILE": None,
        "OIDC_ISSUER": f"http://127.0.0.1:{auth_port}/realms/gatehouse",
        "GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD,
        "GATEHOUSE_DATA_DIR": ".data",
        "DATABASE_URL": postgres_url,
        "AMQP_URL": amqp_namespace.url,
        "GATEHOUSE_AMQP_EXCHANGE": amqp_namespace.exchange,
        "REDIS_URL": redis_namespace.url,
        "GATEHOUSE_RATE_LIMIT_PREFIX": redis_namespace.prefix,
    }


def auth_env(auth_port: int) -> dict[str, str]:
    """The auth process of split mode: the embedded issuer, opted in, its key encrypted."""
    return {
        "GATEHOUSE_AUTH_PORT": str(auth_port),
        "GATEHOUSE_AUTH_EMBEDDED_ISSUER": "true",
        "GATEHOUSE_AUTH_KEY_PASSPHRASE": "an e2e passphrase of the signing key",
        "GATEHOUSE_AUTH_PUBLIC_URL": f"http://127.0.0.1:{auth_port}",
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


# A safety net, not a budget: seven processes importing on a shared 2-core machine can
# get a few percent of a core each. Start-up time is measured by bench/, not here.
READY_WITHIN = 180.0


async def wait_ready(procs: Processes, url: str, within: float = READY_WITHIN) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            procs.assert_alive()
            try:
                if (await client.get(url, timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} not ready within {within}s\n{procs.logs()}")


async def login(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/auth/token", json={"username": username, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    return str(body["access_token"])


async def subscribe(ws_url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"})
    await ws.send(json.dumps({"id": "s1", "op": "subscribe", "channel": "authors"}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert reply == {"id": "s1", "ok": True, "result": reply.get("result")}, reply
    return ws


async def next_event(ws: websockets.ClientConnection, author_id: str) -> dict[str, object]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") == "event" and message["event"]["data"]["id"] == author_id:
            return dict(message)


async def user_flow(gateways: list[str], name: str) -> None:
    """What a client does: log in, get refused without a (valid) token or role,
    create an author, read it back, and see the event live on every WebSocket."""
    base = gateways[0]
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        editor = await login(client, "editor")
        nobody = await login(client, "nobody")

        anonymous = await client.get("/api/v1/authors")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        head, payload, signature = editor.split(".")
        tampered = f"{head}.{payload}.{signature[:-6]}AAAAAA"
        forged = await client.get("/api/v1/authors", headers=_bearer(tampered))
        assert forged.status_code == 401

        refused = await client.post("/api/v1/authors", json={"name": name}, headers=_bearer(nobody))
        assert refused.status_code == 403

        sockets = [await subscribe(_ws_url(gw), editor) for gw in gateways]
        created = await client.post(
            "/api/v1/authors", json={"name": name, "bio": "e2e"}, headers=_bearer(editor)
        )
        assert created.status_code == 201, created.text
        author = created.json()
        assert author["name"] == name

        read = await client.get(f"/api/v1/authors/{author['id']}", headers=_bearer(editor))
        assert read.status_code == 200
        assert read.json()["name"] == name

        for ws in sockets:
            pushed = await next_event(ws, author["id"])
            assert pushed["channel"] == "authors"
            event = pushed["event"]
            assert isinstance(event, dict)
            assert event["type"] == "gatehouse.author.created"
            assert event["specversion"] == "1.0"
            await ws.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1) + "/ws"


UserFlow = Callable[[list[str], str], Awaitable[None]]
