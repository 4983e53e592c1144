"""An httpx transport on aiohttp's connection pool: the httpx API without httpcore's pool cost.

DESIGN §11 measured plain httpx 0.28 at 900-1,400 µs of CPU per proxied request,
most of it httpcore's pool bookkeeping (httpx issue #3215); aiohttp's pool costs a
fraction of that. The ``httpx-aiohttp`` package does the same job but maps a
refused connection to ``ConnectTimeout`` (a 504 instead of a 502), re-quotes the
path, and keeps cookies; here, for a proxy:

* the URL is sent exactly as built (``encoded=True``): raw path and query survive;
* nothing is added to what the caller sent (no ``User-Agent``, ``Accept``,
  ``Accept-Encoding``), responses are not decompressed, cookies are not kept
  (one user's ``Set-Cookie`` must never ride along on another user's request);
* aiohttp's errors become the httpx exceptions httpcore raises for the same
  failure, and an error raised by the request body (client gone, body over the
  limit) propagates unchanged, as it does through httpcore.

Timeouts come from the request (httpx puts the client's ``Timeout`` there): pool
and connect as aiohttp's ``connect`` and ``sock_connect``, read as ``sock_read``.
aiohttp has no write timeout; a stalled upload is bounded by the read timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any

import aiohttp
import httpx
from yarl import URL

_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding")
_CHUNK = 64 * 1024


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (one connection pool) per transport, opened on first use."""

    # Below uvicorn's 5 s keep-alive, so the upstream rarely closes a connection just
    # as it is reused (aiohttp retries an idempotent request once when it does).
    def __init__(self, *, max_connections: int, keepalive_expiry: float = 4.0) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, keepalive_timeout=self._keepalive_expiry
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_NOT_ADDED,
            auto_decompress=False,
            trust_env=False,
            requote_redirect_url=False,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        body = _Body(request.stream) if _has_body(request) else None
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if body is None or name.lower() != b"transfer-encoding"  # aiohttp chunks itself
        ]
        try:
            response = await session.request(
                request.method,
                self._url(request),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout(request.extensions.get("timeout", {})),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            if body is not None and body.error is not None:
                raise body.error from None
            raise _httpx_error(exc, request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": _reason(response)},
        )

    def _url(self, request: httpx.Request) -> URL:
        """The URL exactly as built; httpcore's ``target`` extension replaces path and query."""
        url, target = request.url, request.extensions.get("target")
        if target is None:
            return URL(str(url), encoded=True)
        return URL(f"{url.scheme}://{url.netloc.decode()}{target.decode('latin-1')}", encoded=True)

    def _timeout(self, timeout: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeout.get("pool"), timeout.get("connect"), timeout.get("read"))
        cached = self._timeouts.get(key)
        if cached is None:
            pool, connect, read = key
            cached = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = cached
        return cached

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Body:
    """The request body as aiohttp reads it, remembering an error the source raised."""

    def __init__(self, source: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        self.source = source
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if isinstance(self.source, AsyncIterable):
                async for chunk in self.source:
                    yield chunk
            else:  # httpx streams are both; a request built by hand may be sync only
                for chunk in self.source:
                    yield chunk
        except Exception as exc:
            self.error = exc
            raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        # Back to the pool when the body was read to the end, closed otherwise.
        self._response.release()


def _has_body(request: httpx.Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0") != "0"


def _reason(response: aiohttp.ClientResponse) -> bytes:
    return (response.reason or "").encode("latin-1")


def _httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception httpcore raises for the same failure (first match wins)."""
    error = next((e for a, e in _ERRORS if isinstance(exc, a)), httpx.NetworkError)
    return error(str(exc) or type(exc).__name__, request=request)


# Order matters: aiohttp's timeouts are also connection errors (TimeoutError).
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # connecting, or waiting for the pool
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionError, httpx.ReadError),
)
