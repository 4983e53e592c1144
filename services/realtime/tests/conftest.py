"""A real issuer (discovery + JWKS over loopback HTTP) and real uvicorn servers.

The identity provider is an outside boundary for this service, so the tests stand
up gatehouse.testing.TestIssuer; everything of the realtime service itself is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from gatehouse.common.events import EventBus
from gatehouse.realtime import RealtimeSettings, create_app, uvicorn_ws_options
from gatehouse.testing import TestIssuer, serve, serve_issuer

TIMEOUT = 5.0
VIEWER = ("get-authors",)


@pytest.fixture
async def issuer() -> AsyncIterator[TestIssuer]:
    """An issuer whose tokens carry the viewer role unless a test names other roles."""
    async with serve_issuer(TestIssuer(roles=VIEWER)) as issuer:
        yield issuer


@dataclass
class Realtime:
    http_url: str
    settings: RealtimeSettings

    @property
    def ws_url(self) -> str:
        return self.http_url.replace("http://", "ws://", 1) + "/ws"

    @contextlib.asynccontextmanager
    async def connect(self, token: str | None = None) -> AsyncIterator[Client]:
        """A WebSocket client, with ``Authorization: Bearer token`` when a token is given."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        async with websockets.connect(self.ws_url, additional_headers=headers) as ws:
            yield Client(ws)


class Client:
    """A thin protocol client over a real ``websockets`` connection."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, message: Any) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def call(self, **message: Any) -> dict[str, Any]:
        """Send one request and return the next message."""
        await self.send(message)
        return await self.receive()

    async def receive(self) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))  # type: ignore[no-any-return]

    async def close_code(self) -> int | None:
        """Wait for the server to close the socket; its close code."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        return self.ws.close_code  # type: ignore[no-any-return]


StartRealtime = Callable[..., contextlib.AbstractAsyncContextManager[Realtime]]


@pytest.fixture
def start_realtime(issuer: TestIssuer) -> StartRealtime:
    """Start the realtime app on a free loopback port with settings overrides."""

    @contextlib.asynccontextmanager
    async def start(bus: EventBus | None = None, **overrides: Any) -> AsyncIterator[Realtime]:
        values: dict[str, Any] = {"oidc_issuer": issuer.issuer_url, "amqp_url": None, **overrides}
        settings = RealtimeSettings(**values)
        app = create_app(settings, bus=bus)
        async with serve(app, **uvicorn_ws_options(settings)) as url:
            yield Realtime(url, settings)

    return start
