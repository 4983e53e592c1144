"""The HTTP proxy at the end of the pipeline: stream the request up and the response back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx

from gatehouse.common.errors import UpstreamError, UpstreamTimeout
from gatehouse.common.types import Receive, Scope, Send
from gatehouse.gateway.asgi import header, route_of
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.config import Route
from gatehouse.gateway.forwarding import response_headers, target_path, upstream_headers
from gatehouse.gateway.metrics import UPSTREAM_LATENCY, UPSTREAM_REQUESTS
from gatehouse.gateway.upstreams import UpstreamClient


class ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class HttpProxy:
    def __init__(self, upstreams: dict[str, UpstreamClient], addresses: ClientAddress) -> None:
        self.upstreams = upstreams
        self.addresses = addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_of(scope)
        upstream = self.upstreams[route.upstream]
        request = self._request(upstream, route, scope, receive)
        try:
            response = await self._send(upstream, route, request)
        except ClientGone:
            return
        try:
            await _relay(response, send)
        finally:
            await response.aclose()

    def _request(
        self, upstream: UpstreamClient, route: Route, scope: Scope, receive: Receive
    ) -> httpx.Request:
        # httpx.Request, not client.build_request: the client's default headers
        # (Accept-Encoding, User-Agent) must not be added to what the caller sent.
        # The raw path and query travel as httpcore's "target" extension (both
        # transports honour it): exact bytes, and no httpx URL to parse per request.
        return httpx.Request(
            scope["method"],
            upstream.base_url,
            headers=upstream_headers(scope, self.addresses),
            content=_body(receive) if _has_body(scope) else None,
            extensions={"target": target_path(route, scope)},
        )

    async def _send(
        self, upstream: UpstreamClient, route: Route, request: httpx.Request
    ) -> httpx.Response:
        start = time.perf_counter()
        try:
            response = await upstream.breaker.call(
                lambda: upstream.client.send(request, stream=True),
                is_failure=lambda r: r.status_code >= 500,
                counts=lambda exc: isinstance(exc, httpx.TransportError),
            )
        except httpx.TransportError as exc:
            UPSTREAM_REQUESTS.labels(route.path, upstream.name, "0").inc()
            raise _upstream_error(upstream.name, exc) from None
        UPSTREAM_LATENCY.labels(upstream.name).observe(time.perf_counter() - start)
        UPSTREAM_REQUESTS.labels(route.path, upstream.name, str(response.status_code)).inc()
        return response


async def _relay(response: httpx.Response, send: Send) -> None:
    headers = response_headers(list(response.headers.raw))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    # With a Content-Length, the chunk that completes it is the last one: no extra
    # empty message through every middleware (most responses fit one chunk).
    left = _content_length(response)
    async for chunk in response.aiter_raw():
        if chunk:
            left -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": left != 0})
    if left != 0:
        await send({"type": "http.response.body", "body": b""})


def _content_length(response: httpx.Response) -> int:
    """The declared body length, or -1 (never reached) when unknown or streamed."""
    value = response.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else -1


def _has_body(scope: Scope) -> bool:
    return header(scope, b"content-length") not in (None, b"0") or (
        header(scope, b"transfer-encoding") is not None
    )


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        if body := message.get("body", b""):
            yield body
        if not message.get("more_body", False):
            return


def _upstream_error(name: str, exc: httpx.TransportError) -> UpstreamError | UpstreamTimeout:
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"upstream {name} did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError(f"upstream {name} is unreachable")
    return UpstreamError(f"upstream {name} failed: {type(exc).__name__}")
