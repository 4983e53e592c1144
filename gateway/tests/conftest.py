"""Real servers for the gateway's tests: an OIDC issuer, an upstream, the gateway itself.

Everything runs under uvicorn on free loopback ports in the test's event loop, so
requests cross real sockets exactly as in production. The issuer is the outside
boundary: gatehouse.testing.TestIssuer, served as discovery document + JWKS.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gatehouse import testing
from gatehouse.common.types import ASGIApp, Receive, Scope, Send
from gatehouse.gateway import GatewayConfig, GatewaySettings, create_app, load_config
from gatehouse.gateway.app import Gateway
from gatehouse.testing import RedisNamespace, TestIssuer, bind_loopback, serve_issuer


def serve(app: ASGIApp) -> AbstractAsyncContextManager[str]:
    """Serve ``app`` with uvicorn on a free loopback port, as the gateway is deployed.

    The gateway brings its own server options (guarded HTTP protocol, WebSocket
    limits); any other app gets the same WebSocket implementation without them.
    """
    if isinstance(app, Gateway):
        return testing.serve(app, **app.server_options())
    # proxy_headers=False: the gateway resolves X-Forwarded-For itself (trusted_proxies);
    # uvicorn's own rewrite of the client address would pre-empt it.
    return testing.serve(app, ws="websockets-sansio", proxy_headers=False)


async def send_json(send: Send, status: int, body: Any, headers: list[Any] | None = None) -> None:
    data = json.dumps(body).encode()
    start_headers = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": data})


@pytest.fixture
async def issuer() -> AsyncIterator[TestIssuer]:
    async with serve_issuer() as issuer:
        yield issuer


_OP = {"responses": {"200": {"description": "ok"}}}
DOCUMENTS: dict[str, Any] = {
    "/openapi.json": {
        "openapi": "3.1.0",
        "info": {"title": "upstream", "version": "1"},
        "paths": {
            "/v1/authors": {"get": _OP, "post": _OP},
            "/v1/authors/{author_id}": {"get": _OP, "put": _OP, "delete": _OP, "trace": _OP},
            "/auth/token": {"post": _OP},
            "/internal/revocations": {"get": _OP},
        },
        "components": {"schemas": {"Author": {"type": "object"}}},
    },
    "/asyncapi.json": {
        "asyncapi": "3.0.0",
        "servers": {"gateway": {"host": "x", "protocol": "ws"}},
    },
}


@dataclass
class Upstream:
    """An upstream that echoes what it received; a few paths behave differently."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    fail_status: int = 500
    # The auth service's revocation list (CONTRACTS.md), served at /internal/revocations.
    revoked: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/internal/revocations":
            await self.revocations(scope, send)
            return
        if scope["path"] in DOCUMENTS:
            await send_json(send, 200, DOCUMENTS[scope["path"]])
            return
        body, chunks = b"", 0
        while True:
            message = await receive()
            body += message.get("body", b"")
            chunks += 1
            if not message.get("more_body"):
                break
        record = {
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "body": body.decode(errors="replace"),
            "chunks": chunks,
        }
        self.seen.append(record)
        path = scope["path"]
        if scope["method"] == "HEAD":  # as FastAPI: a GET route does not answer HEAD
            await send_json(send, 405, {"detail": "Method Not Allowed"}, [(b"allow", b"GET")])
        elif path.endswith("/redirect"):
            location = f"{self.url}/v1/authors/1".encode()
            await send_json(send, 307, {}, [(b"location", location)])
        elif path.endswith("/created"):
            await send_json(send, 201, {}, [(b"location", b"/v1/authors/1?x=1")])
        elif path.endswith("/empty"):
            headers = [(b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        elif path.endswith("/problem"):
            problem = {"title": "Not Found", "status": 404, "code": "http_404", "instance": path}
            headers = [(b"content-type", b"application/problem+json")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(problem).encode()})
        elif path.endswith("/not-allowed"):
            await send_json(send, 405, {}, [(b"allow", b"GET, POST, TRACE")])
        elif path.endswith("/fail"):
            await send_json(send, self.fail_status, {"error": "boom"})
        elif path.endswith("/slow"):
            await asyncio.sleep(2)
            await send_json(send, 200, record)
        elif path.endswith("/stream"):
            await self.stream(send)
        elif path.endswith("/trickle"):  # the head now, the body a second later
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await asyncio.sleep(1)
            await send({"type": "http.response.body", "body": b"late"})
        elif path.endswith("/cookie"):
            await send_json(send, 200, record, [(b"set-cookie", b"session=alice; Path=/")])
        else:
            await send_json(send, 200, record, [(b"keep-alive", b"timeout=5")])

    async def revocations(self, scope: Scope, send: Send) -> None:
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
        )
        after = int(query.get("after", "0"))
        body = {"items": self.revoked[after:], "cursor": str(len(self.revoked))}
        await send_json(send, 200, body)

    async def stream(self, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"proxy-authenticate", b"Basic")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps({"headers": headers})})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.seen.append({"ws_close": message.get("code")})
                return
            text = message.get("text")
            if text and text.startswith("close:"):
                code = int(text.split(":")[1])
                await send({"type": "websocket.close", "code": code, "reason": "bye"})
                return
            if text is not None:
                await send({"type": "websocket.send", "text": "echo:" + text})
            else:
                await send({"type": "websocket.send", "bytes": b"echo:" + message["bytes"]})


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    app = Upstream()
    async with serve(app) as url:
        app.url = url
        yield app


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    with bind_loopback() as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def config_for(upstream_url: str, **changes: Any) -> GatewayConfig:
    """The packaged config with every upstream at ``upstream_url`` and ``changes`` applied.

    Routes accept any body type here (the proxy's mechanics are under test);
    ``packaged_config`` keeps the shipped content types.
    """
    data = packaged_config(upstream_url).model_dump()
    data["routes"] = [{**route, "content_types": None} for route in data["routes"]]
    for key, value in changes.items():
        data[key] = value
    return GatewayConfig.model_validate(data)


def packaged_config(upstream_url: str) -> GatewayConfig:
    return load_config(None, dict.fromkeys(("authors", "realtime", "auth"), (upstream_url,)))


GatewayFactory = Callable[..., Any]


@pytest.fixture
def start_gateway(issuer: TestIssuer) -> GatewayFactory:
    """``async with start_gateway(config, **settings) as url``: a running gateway."""

    @asynccontextmanager
    async def start(config: GatewayConfig, **settings: Any) -> AsyncIterator[str]:
        values: dict[str, Any] = {"oidc_issuer": issuer.issuer_url, "redis_url": None, **settings}
        app = create_app(GatewaySettings(**values), config=config)
        async with serve(app) as url:
            yield url

    return start


@pytest.fixture
def start_gateway_app(issuer: TestIssuer) -> GatewayFactory:
    """``async with start_gateway_app(config) as (app, url, admin_url)``: public and admin ports."""

    @asynccontextmanager
    async def start(
        config: GatewayConfig, **settings: Any
    ) -> AsyncIterator[tuple[Gateway, str, str]]:
        values: dict[str, Any] = {"oidc_issuer": issuer.issuer_url, "redis_url": None, **settings}
        app = create_app(GatewaySettings(**values), config=config)
        async with serve(app) as url, testing.serve(app.admin, lifespan="off") as admin:
            yield app, url, admin

    return start


@pytest.fixture
async def redis_behind_a_cut(redis_namespace: RedisNamespace) -> AsyncIterator[RedisBehindACut]:
    """The real Redis behind a TCP proxy of the test's own: ``await redis.proxy.cut()``
    takes it away from a running gateway (a gateway does not start without its Redis)."""
    async with testing.TcpProxy.to_url(redis_namespace.url) as proxy:
        yield RedisBehindACut(proxy.url_for(redis_namespace.url), redis_namespace.prefix, proxy)


@dataclass
class RedisBehindACut:
    url: str
    prefix: str
    proxy: testing.TcpProxy

    def settings(self) -> dict[str, Any]:
        return {"redis_url": self.url, "rate_limit_prefix": self.prefix}


def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
