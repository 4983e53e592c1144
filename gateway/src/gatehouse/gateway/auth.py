"""Authentication and role checks at the edge (pure ASGI).

Two middleware with the rate limiter between them: ``AuthenticationMiddleware``
identifies the caller (so the limiter can key on the user), and
``AuthorizationMiddleware`` refuses with 401 or 403 (RFC 9110 §15.5.2/§15.5.4)
before any upstream work. Refusals are therefore rate-limited too, per client
IP, which slows down token guessing.
"""

from __future__ import annotations

from typing import Protocol

from gatehouse.common.errors import Forbidden, Unauthorized
from gatehouse.common.identity import Principal
from gatehouse.common.tokens import bearer_token
from gatehouse.common.types import ASGIApp, Receive, Scope, Send
from gatehouse.gateway.asgi import AUTH_ERROR, PRINCIPAL, header, principal_of, route_of

_INVALID_TOKEN = 'Bearer realm="gatehouse", error="invalid_token"'  # noqa: S105 (RFC 6750 §3)


class Verifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


class AuthenticationMiddleware:
    """Verify the bearer token of non-public routes; remember the principal or the error."""

    def __init__(self, app: ASGIApp, verifier: Verifier) -> None:
        self.app = app
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not route_of(scope).public:
            await self._identify(scope)
        await self.app(scope, receive, send)

    async def _identify(self, scope: Scope) -> None:
        authorization = header(scope, b"authorization")
        if authorization is None:
            return
        token = bearer_token(authorization)
        if token is None:
            scope[AUTH_ERROR] = Unauthorized("expected an Authorization: Bearer token")
            return
        try:
            scope[PRINCIPAL] = await self.verifier.verify(token)
        except Unauthorized as exc:
            exc.headers["WWW-Authenticate"] = _INVALID_TOKEN
            scope[AUTH_ERROR] = exc


class AuthorizationMiddleware:
    """401 without valid credentials, 403 without a role the route and method need.

    A WebSocket handshake without an ``Authorization`` header passes: browsers cannot
    set it, and realtime then expects the first-message auth of DESIGN §12.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            _authorize(scope)
        await self.app(scope, receive, send)


def _authorize(scope: Scope) -> None:
    route = route_of(scope)
    if route.public:
        return
    error = scope.get(AUTH_ERROR)
    if isinstance(error, Unauthorized):
        raise error
    principal = principal_of(scope)
    if principal is None:
        if scope["type"] == "websocket":
            return
        raise Unauthorized("authentication required")
    method = scope.get("method", "GET")
    if not principal.has_any(route.roles_for(method)):
        raise Forbidden(
            f"{method} {route.prefix} needs one of the roles {list(route.roles_for(method))}"
        )
