"""What a request carries upstream: target path, cleaned headers, X-Forwarded-*.

Shared by the HTTP and the WebSocket proxy.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from gatehouse.common.logging import request_id_var
from gatehouse.common.requests import incoming_request_id
from gatehouse.common.types import Scope
from gatehouse.gateway.asgi import header
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.config import Route

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself; a client's own values are never passed on.
_REPLACED = frozenset(
    {b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}
)
_TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def target_path(route: Route, scope: Scope) -> bytes:
    """The raw path and query to request upstream, with ``strip_prefix`` removed."""
    raw = bytes(scope.get("raw_path") or quote(scope["path"]).encode())
    strip = (route.strip_prefix or "").encode()
    if strip and raw.startswith(strip):
        raw = raw[len(strip) :]
    elif strip:  # the prefix arrived percent-encoded: rebuild from the decoded path
        raw = quote(scope["path"][len(strip) :]).encode()
    query = scope.get("query_string", b"")
    return raw + b"?" + query if query else raw


def connection_tokens(scope: Scope) -> set[bytes]:
    """Headers the client named in ``Connection`` (hop-by-hop too, RFC 9110 §7.6.1)."""
    value = header(scope, b"connection") or b""
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


def upstream_headers(
    scope: Scope, addresses: ClientAddress, *, skip: frozenset[bytes] = frozenset()
) -> Headers:
    """Client headers minus hop-by-hop and identity headers, plus the gateway's own."""
    drop = HOP_BY_HOP | _REPLACED | connection_tokens(scope) | skip
    headers = [
        (name, value)
        for name, value in scope.get("headers", ())
        if name not in drop and not name.startswith(b"x-user-") and _valid_trace(name, value)
    ]
    return headers + forwarded_headers(scope, addresses)


def forwarded_headers(scope: Scope, addresses: ClientAddress) -> Headers:
    trusted = addresses.is_trusted(addresses.peer(scope))
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    proto = (trusted and header(scope, b"x-forwarded-proto")) or str(scheme).encode()
    host = (trusted and header(scope, b"x-forwarded-host")) or header(scope, b"host")
    headers = [
        (b"x-forwarded-for", addresses.forwarded_for(scope).encode()),
        (b"x-forwarded-proto", proto),
        (b"x-request-id", (request_id_var.get() or incoming_request_id(scope)).encode()),
    ]
    return headers + ([(b"x-forwarded-host", host)] if host else [])


def response_headers(headers: Headers) -> Headers:
    """Upstream response headers minus hop-by-hop ones."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    drop = HOP_BY_HOP | named
    return [(name, value) for name, value in headers if name.lower() not in drop]


def _valid_trace(name: bytes, value: bytes) -> bool:
    return name != b"traceparent" or bool(_TRACEPARENT.match(value))
