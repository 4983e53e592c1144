"""A real issuer (discovery + JWKS over loopback HTTP) and real uvicorn servers.

The identity provider is an outside boundary for this service, so the tests stand
up a tiny one of their own; everything of the realtime service itself is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import uvicorn
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gatehouse.common.events import EventBus
from gatehouse.realtime import RealtimeSettings, create_app, uvicorn_ws_options

TIMEOUT = 5.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # the test runner owns the signals
        yield


def bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on the bound ``sock``; yields ``host:port``."""
    config = uvicorn.Config(app, log_config=None, lifespan="on", **options)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    host, port = sock.getsockname()
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class Issuer:
    """An OIDC issuer with one RSA key: discovery, JWKS and Keycloak-shaped tokens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kid = "test-key"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/certs"})

        async def certs(request: Request) -> JSONResponse:
            jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
            return JSONResponse({"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]})

        path = "/realms/test"
        return Starlette(
            routes=[
                Route(f"{path}/.well-known/openid-configuration", discovery),
                Route(f"{path}/certs", certs),
            ]
        )

    def forged_token(self) -> str:
        """A token naming this issuer and key id, signed with a key it never published."""
        impostor = Issuer(self.url)
        return impostor.token()

    def token(
        self, sub: str = "user-1", roles: tuple[str, ...] = ("get-authors",), ttl: float = 300
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": sub,
            "aud": ["gatehouse", "account"],
            "azp": "gatehouse",
            "iat": now,
            "exp": int(now + ttl),
            "preferred_username": sub,
            "realm_access": {"roles": list(roles)},
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    sock = bind_loopback()
    host, port = sock.getsockname()
    issuer = Issuer(f"http://{host}:{port}/realms/test")
    async with serve(issuer.app(), sock):
        yield issuer


@dataclass
class Realtime:
    address: str
    settings: RealtimeSettings

    @property
    def ws_url(self) -> str:
        return f"ws://{self.address}/ws"

    @property
    def http_url(self) -> str:
        return f"http://{self.address}"

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
def start_realtime(issuer: Issuer) -> StartRealtime:
    """Start the realtime app on a free loopback port with settings overrides."""

    @contextlib.asynccontextmanager
    async def start(bus: EventBus | None = None, **overrides: Any) -> AsyncIterator[Realtime]:
        values: dict[str, Any] = {"oidc_issuer": issuer.url, "amqp_url": None, **overrides}
        settings = RealtimeSettings(**values)
        sock = bind_loopback()
        app = create_app(settings, bus=bus)
        async with serve(app, sock, **uvicorn_ws_options(settings)) as address:
            yield Realtime(address, settings)

    return start
