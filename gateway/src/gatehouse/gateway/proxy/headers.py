"""What a request carries upstream: the client's cleaned headers plus the gateway's own.

The client's hop-by-hop, forwarding and identity-looking headers were dropped
when the request was parsed (:class:`Exchange`); here the gateway adds
``X-Forwarded-For/Proto/Host``, ``X-Request-ID`` and, for an authenticated caller,
the verified identity in headers only the gateway sets (``X-Gatehouse-*``; a
client's are always stripped). Upstreams may trust those only from the gateway,
which NetworkPolicies guarantee in a cluster; they verify the bearer token too.
"""

from __future__ import annotations

from gatehouse.gateway.edge.exchange import Exchange

SUBJECT = "x-gatehouse-user-id"
USERNAME = "x-gatehouse-username"
ROLES = "x-gatehouse-roles"
_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"origin",
    }
)


def upstream_headers(ex: Exchange, decoded: bool = False) -> list[tuple[str, str]]:
    """Headers for an upstream HTTP request (``decoded``: the gzip body is sent inflated)."""
    skip = (b"content-encoding", b"content-length") if decoded else ()
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in ex.passed
        if name not in skip
    ]
    return headers + gateway_headers(ex)


def websocket_headers(ex: Exchange) -> list[tuple[str, str]]:
    """Headers for the upstream WebSocket handshake (the client library sets the handshake)."""
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in ex.passed
        if name not in _HANDSHAKE
    ]
    return headers + gateway_headers(ex)


def gateway_headers(ex: Exchange) -> list[tuple[str, str]]:
    scope = ex.scope
    addresses_trusted = ex.peer_trusted
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    proto = (addresses_trusted and ex.forwarded_proto) or str(scheme).encode()
    host = (addresses_trusted and ex.forwarded_host) or ex.host
    headers = [
        ("x-forwarded-for", ex.forwarded_chain.decode("latin-1")),
        ("x-forwarded-proto", proto.decode("latin-1")),
        ("x-request-id", ex.request_id),
    ]
    if host:
        headers.append(("x-forwarded-host", host.decode("latin-1")))
    if ex.principal is not None:
        principal = ex.principal
        headers += [
            (SUBJECT, principal.subject),
            (USERNAME, principal.username.encode("utf-8").decode("latin-1")),
            (ROLES, ",".join(sorted(principal.roles))),
        ]
    return headers
