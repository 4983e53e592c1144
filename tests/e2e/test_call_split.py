"""WebSocket `call` end to end in split mode: a client of the gateway asks the real
authors service (over RabbitMQ request/reply, through realtime) as itself, so roles,
audit and idempotency apply as for HTTP; a callee that hangs or is gone is a stable
error code, never a hang."""

from __future__ import annotations

import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from .conftest import Processes, auth_env, free_port, login, production_env, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.services]

CALL_TIMEOUT = 2.0


@pytest.fixture
async def gateway(
    postgres_url: str, redis_namespace: Any, amqp_namespace: Any, processes: Processes
) -> str:
    """auth, authors (relay inline), realtime and a gateway as processes; the gateway's URL.
    (`processes` comes last so that it is torn down first, as in test_split.)"""
    ports = {name: free_port() for name in ("auth", "authors", "realtime", "gateway", "admin")}
    common = production_env(ports["auth"], postgres_url, redis_namespace, amqp_namespace)
    processes.run(["migrate", "authors"], common)
    processes.run(["migrate", "auth"], common)
    processes.start("auth", ["run", "auth"], {**common, **auth_env(ports["auth"])})
    processes.start(
        "authors", ["run", "authors"], {**common, "GATEHOUSE_AUTHORS_PORT": str(ports["authors"])}
    )
    realtime = {
        "GATEHOUSE_REALTIME_PORT": str(ports["realtime"]),
        "GATEHOUSE_REALTIME_CALL_TIMEOUT": str(CALL_TIMEOUT),
    }
    processes.start("realtime", ["run", "realtime"], {**common, **realtime})
    upstreams = {
        f"GATEHOUSE_UPSTREAM_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}"
        for name in ("auth", "authors", "realtime")
    }
    gateway = {
        "GATEHOUSE_GATEWAY_PORT": str(ports["gateway"]),
        "GATEHOUSE_ADMIN_PORT": str(ports["admin"]),
        **upstreams,
    }
    processes.start("gateway", ["run", "gateway"], {**common, **gateway})
    for name in ("auth", "authors", "realtime", "gateway"):
        await wait_ready(processes, f"http://127.0.0.1:{ports[name]}/readyz")
    return f"http://127.0.0.1:{ports['gateway']}"


class Socket:
    """One WebSocket through the gateway, as one user; requests numbered in order."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws, self.sent = ws, 0

    async def call(self, method: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        self.sent += 1
        request = {"id": self.sent, "op": "call", "method": method, "params": params, **extra}
        await self.ws.send(json.dumps(request))
        while True:  # skip pushes; the reply has our id
            message = json.loads(await self.ws.recv(decode=True))
            if message.get("id") == self.sent:
                return dict(message)


@contextlib.asynccontextmanager
async def open_socket(base: str, token: str) -> AsyncIterator[Socket]:
    url = base.replace("http://", "ws://", 1) + "/ws"
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
        yield Socket(ws)


async def test_call_reaches_the_real_authors_service_as_the_caller(
    gateway: str, processes: Processes
) -> None:
    async with (
        httpx.AsyncClient(base_url=gateway, timeout=10) as http,
        contextlib.AsyncExitStack() as sockets,
    ):
        editor, viewer, admin = [await login(http, who) for who in ("editor", "viewer", "admin")]
        socket = await sockets.enter_async_context(open_socket(gateway, editor))
        key = uuid.uuid4().hex
        params = {"name": "Samuel R. Delany", "bio": "over the socket"}
        created = await socket.call("authors.create", params, idempotency_key=key)
        assert created["ok"] is True, created
        author = created["result"]
        retried = await socket.call("authors.create", params, idempotency_key=key)
        reused = await socket.call("authors.create", {"name": "Other"}, idempotency_key=key)
        got = await socket.call("authors.get", {"id": author["id"]})
        listed = await socket.call("authors.list", {"name": "Samuel R. Delany"})
        audit = await http.get(
            "/api/v1/audit",
            params={"entity_id": author["id"]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        viewing = await sockets.enter_async_context(open_socket(gateway, viewer))
        refused = await viewing.call("authors.create", {"name": "Nobody's author"})
        hung, down = await _callee_silent_then_gone(processes, socket, author["id"])

    assert retried == {"id": 2, "ok": True, "result": author}  # the first answer, replayed
    assert reused["error"]["code"] == "idempotency_key_reused"
    assert got["result"]["name"] == "Samuel R. Delany"
    assert [a["id"] for a in listed["result"]["data"]] == [author["id"]]
    assert audit.status_code == 200, audit.text
    (entry,) = audit.json()["data"]  # one create, however many retries
    assert entry["action"] == "created"
    assert entry["actor"]["username"] == "editor"
    assert "create-author" in entry["actor"]["roles"]
    assert entry["request_id"]
    assert refused["error"]["code"] == "forbidden"
    assert hung["error"]["code"] == "rpc_timeout"
    assert down["error"]["code"] == "rpc_unavailable"


async def _callee_silent_then_gone(
    processes: Processes, socket: Socket, author_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call while authors is stopped (up but silent), then one after it exited."""
    authors = next(p for name, p, _ in processes.running if name == "authors")
    authors.send_signal(signal.SIGSTOP)  # the request waits in its queue, unanswered
    try:
        hung = await socket.call("authors.get", {"id": author_id})
    finally:
        authors.send_signal(signal.SIGCONT)
    authors.send_signal(signal.SIGTERM)
    authors.wait(timeout=30)
    return hung, await socket.call("authors.get", {"id": author_id})
