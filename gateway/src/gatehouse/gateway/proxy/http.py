"""The HTTP proxy: stream the request up and the response back, as the public API.

What the client sees is the gateway's API, never the upstream's internals:
``Location``/``Content-Location`` point at public paths (the route's stripped
prefix put back, an upstream's own address removed), an upstream problem's
``instance`` is the public path and its ``code`` a word (``not_found``, not
``http_404``), one ``Date`` (the gateway's), and ``HEAD`` works wherever ``GET``
does (sent upstream as ``GET``; the server drops the body).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
from opentelemetry.trace import SpanKind, Status, StatusCode

from gatehouse.common import tracing
from gatehouse.common.errors import BadRequest, PayloadTooLarge, UpstreamError
from gatehouse.common.problem import status_code_word
from gatehouse.common.types import Receive, Send
from gatehouse.gateway.config import Route
from gatehouse.gateway.edge.exchange import HOP_BY_HOP, Exchange, Headers
from gatehouse.gateway.edge.policy import RouteTable
from gatehouse.gateway.metrics import upstream_observer
from gatehouse.gateway.proxy.headers import upstream_headers
from gatehouse.gateway.proxy.upstream import UpstreamPool

PROBLEM_MAX = 65_536
SMALL_BODY = 65_536  # read whole rather than streamed
_HTTP_CODE = re.compile(r"^http_(\d{3})$")
_DROPPED = HOP_BY_HOP | {b"date", b"server"}
TRACE_HEADERS = ("traceparent", "tracestate")


class ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


class HttpProxy:
    def __init__(
        self, upstreams: dict[str, UpstreamPool], table: RouteTable, max_body_bytes: int
    ) -> None:
        self.upstreams = upstreams
        self.table = table
        self.max_body = max_body_bytes

    async def __call__(
        self, ex: Exchange, receive: Receive, send: Send, *, traced: bool = False
    ) -> None:
        route = ex.route
        assert route is not None
        upstream = self.upstreams[route.upstream]
        method = "GET" if ex.method == "HEAD" else ex.method
        body = _Body(receive, self.max_body, gzip=_gzip(ex)) if ex.has_body else None
        headers = upstream_headers(ex, body is not None and body.gzip)
        observe = upstream_observer(route.prefix, upstream.name)
        target = target_path(route, ex)
        try:
            if traced:
                response = await _traced_request(upstream, method, target, headers, body)
            else:
                response = await upstream.request(
                    method, target, headers, body.chunks() if body else None
                )
        except UpstreamError as exc:
            if body is not None and body.error is not None:
                raise body.error from None
            observe(0)
            if isinstance(exc.__cause__, ClientGone):
                return
            raise
        except Exception:
            if body is not None and body.error is not None:
                raise body.error from None
            raise
        observe(response.status)
        try:
            await self._relay(ex, route, upstream, response, send)
        finally:
            response.release()

    async def _relay(
        self,
        ex: Exchange,
        route: Route,
        upstream: UpstreamPool,
        response: aiohttp.ClientResponse,
        send: Send,
    ) -> None:
        status = response.status
        if not 200 <= status <= 599:
            raise UpstreamError(f"upstream {upstream.name} answered with status {status}")
        headers = self._headers(response.raw_headers, route, upstream)
        length = _length(headers)
        if _is_problem(headers) and length <= PROBLEM_MAX:
            body = _public_problem(await _read_small(response, PROBLEM_MAX), ex.path)
            headers = [h for h in headers if h[0] != b"content-length"]
            headers.append((b"content-length", b"%d" % len(body)))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if 0 < length <= SMALL_BODY:  # the common case: one read, one message
            await send({"type": "http.response.body", "body": await response.read()})
            return
        # With a Content-Length, the chunk that completes it is the last one: no extra
        # empty message. A zero-length body is completed.
        left = length
        if left != 0:
            async for chunk in response.content.iter_any():
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left != 0})
                if left == 0:
                    return
        await send({"type": "http.response.body", "body": b""})

    def _headers(
        self, raw: tuple[tuple[bytes, bytes], ...], route: Route, upstream: UpstreamPool
    ) -> Headers:
        named: frozenset[bytes] = frozenset()
        for name, value in raw:
            if name.lower() == b"connection":
                named = frozenset(t.strip().lower() for t in value.split(b","))
        out = []
        for name, value in raw:
            lower = name.lower()
            if lower in _DROPPED or lower in named:
                continue
            if lower in (b"location", b"content-location"):
                value = self.public_location(value, route, upstream)
            elif lower == b"allow":
                value = _allowed(value, route)
            out.append((lower, value))
        return out

    def public_location(self, value: bytes, route: Route, upstream: UpstreamPool) -> bytes:
        """A Location pointing into the upstream, as the public path that reaches it."""
        text = value.decode("latin-1")
        if text.startswith(("http://", "https://")):
            scheme_end = text.index("//") + 2
            netloc, slash, rest = text[scheme_end:].partition("/")
            if netloc not in upstream.netlocs:
                return value  # somewhere else: not ours to rewrite
            text = "/" + rest if slash else "/"
        elif not text.startswith("/") or text.startswith("//"):
            return value  # relative references resolve against the public URL already
        path = text.split("?", 1)[0].split("#", 1)[0]
        strip = route.strip_prefix or ""
        if strip:
            prefixed = self.table.match(strip + path)
            if prefixed is not None and prefixed.upstream == upstream.name:
                return (strip + text).encode("latin-1")
        as_is = self.table.match(path)
        if as_is is not None and as_is.upstream == upstream.name:
            return text.encode("latin-1")
        return (strip + text).encode("latin-1")


async def _traced_request(
    upstream: UpstreamPool,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: _Body | None,
) -> aiohttp.ClientResponse:
    """The upstream call as a CLIENT span, whose context the upstream gets as its parent
    (the client's own ``traceparent`` and ``tracestate`` replaced)."""
    attributes = {
        "http.request.method": method,
        "gatehouse.upstream": upstream.name,
        "url.path": target.split("?", 1)[0],
    }
    with tracing.span("gateway", method, kind=SpanKind.CLIENT, attributes=attributes) as span:
        headers = [h for h in headers if h[0] not in TRACE_HEADERS]
        headers += tracing.inject({}).items()
        response = await upstream.request(method, target, headers, body.chunks() if body else None)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response


def target_path(route: Route, ex: Exchange) -> str:
    """The raw path and query to request upstream, with ``strip_prefix`` removed."""
    scope = ex.scope
    raw = bytes(scope.get("raw_path") or quote(ex.path).encode()).decode("latin-1")
    strip = route.strip_prefix or ""
    if strip and raw.startswith(strip):
        raw = raw[len(strip) :]
    elif strip:  # the prefix arrived percent-encoded: rebuild from the decoded path
        raw = quote(ex.path[len(strip) :])
    query = scope.get("query_string", b"")
    return raw + "?" + query.decode("latin-1") if query else raw


class _Body:
    """The client's body as it streams up: counted against the limit, gunzipped if needed."""

    def __init__(self, receive: Receive, limit: int, *, gzip: bool) -> None:
        self.receive = receive
        self.limit = limit
        self.gzip = gzip
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._read():
                yield chunk
        except Exception as exc:
            self.error = exc
            raise

    async def _read(self) -> AsyncIterator[bytes]:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.gzip else None
        received = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            data = message.get("body", b"")
            if inflate is not None and data:
                try:  # never inflate more than the limit allows (a zip bomb stops here)
                    data = inflate.decompress(data, self.limit - received + 1)
                except zlib.error:
                    raise BadRequest("the gzip request body is corrupt") from None
                if inflate.unconsumed_tail:
                    raise PayloadTooLarge(f"request body over {self.limit} bytes (decoded)")
            received += len(data)
            if received > self.limit:
                raise PayloadTooLarge(f"request body over {self.limit} bytes")
            if data:
                yield data
            if not message.get("more_body", False):
                return


async def _read_small(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body; a problem longer than ``limit`` is a bad upstream answer."""
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise UpstreamError("upstream problem response too large")
    return b"".join(chunks)


def _gzip(ex: Exchange) -> bool:
    return ex.content_encoding is not None and ex.content_encoding.lower() == b"gzip"


def _length(headers: Headers) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


def _is_problem(headers: Headers) -> bool:
    return any(
        n == b"content-type" and v.startswith(b"application/problem+json") for n, v in headers
    )


def _allowed(value: bytes, route: Route) -> bytes:
    """An upstream's Allow, less what the gateway itself refuses on this route."""
    offered = [m.strip().upper() for m in value.decode("latin-1").split(",") if m.strip()]
    if "GET" in offered and "HEAD" not in offered:
        offered.append("HEAD")
    allowed = route.allowed_methods()
    return ", ".join(m for m in allowed if m in offered).encode()


def _public_problem(body: bytes, public_path: str) -> bytes:
    try:
        problem = json.loads(body)
    except ValueError:
        return body
    if not isinstance(problem, dict):
        return body
    if "instance" in problem:
        problem["instance"] = public_path
    code = problem.get("code")
    if isinstance(code, str) and (match := _HTTP_CODE.match(code)):
        problem["code"] = status_code_word(int(match.group(1)))
        problem["type"] = f"https://gatehouse.dev/problems/{problem['code']}"
    return json.dumps(problem, separators=(",", ":")).encode()
