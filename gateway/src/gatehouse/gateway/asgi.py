"""Small helpers over ASGI scopes and the keys the gateway's middleware share."""

from __future__ import annotations

from gatehouse.common.identity import Principal
from gatehouse.common.types import Scope
from gatehouse.gateway.config import Route

# Keys the pipeline stores in the scope (besides ``route``, the matched Route, whose
# ``path`` is the route template that gatehouse.common.metrics labels requests with).
PRINCIPAL = "gatehouse.principal"
AUTH_ERROR = "gatehouse.auth_error"
CLIENT_IP = "gatehouse.client_ip"


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes), or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def route_of(scope: Scope) -> Route:
    route = scope.get("route")
    assert isinstance(route, Route), "the routing middleware runs first"
    return route


def principal_of(scope: Scope) -> Principal | None:
    principal = scope.get(PRINCIPAL)
    return principal if isinstance(principal, Principal) else None
