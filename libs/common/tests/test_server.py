"""The server every process uses: a busy port and a start-up failure are one error naming
the variable, and the server serves what it is given."""

from __future__ import annotations

import socket

import httpx
import pytest

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.server import Server, running
from gatehouse.common.types import Receive, Scope, Send


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def refusing(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "lifespan"
    await receive()
    raise ConfigurationError("DATABASE_URL", "cannot reach the database db:5432")


async def test_it_serves_and_stops() -> None:
    async with running(Server(hello, "127.0.0.1", 0)) as url, httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.text == "hello"
    assert "server" not in response.headers


async def test_a_busy_port_names_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = Server(hello, "127.0.0.1", port, port_setting="GATEHOUSE_AUTH_PORT")
        with pytest.raises(ConfigurationError) as refused:
            server.bind()
    assert refused.value.setting == "GATEHOUSE_AUTH_PORT"
    assert f"port {port} on 127.0.0.1 is in use" in refused.value.detail


async def test_a_lifespan_configuration_error_is_raised_not_printed() -> None:
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        async with running(Server(refusing, "127.0.0.1", 0)):
            pytest.fail("it started")
