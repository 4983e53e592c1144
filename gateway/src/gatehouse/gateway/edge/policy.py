"""The edge policy: route -> identify -> limit -> authorize -> body, in this order, once.

Each step is a plain method that reads the :class:`Exchange` and either records
what it decided on it or raises the :class:`GatehouseError` the client gets.
``admit`` is the order; nothing else in the gateway decides whether a request
may pass. The rate limit runs before the 401/403 answer so that anonymous and
refused callers are limited per client address too (token guessing costs quota).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import parse_qs

from gatehouse.common import tracing
from gatehouse.common.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    UpgradeRequired,
)
from gatehouse.common.identity import Principal
from gatehouse.common.tokens import bearer_token
from gatehouse.common.types import Message, Receive
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.config import Cors, GatewayConfig, RateLimitPolicy, Route
from gatehouse.gateway.edge.exchange import Exchange
from gatehouse.gateway.rate_limit import RateLimiter, limit_headers, too_many

_INVALID_TOKEN = 'Bearer realm="gatehouse", error="invalid_token"'  # noqa: S105 (RFC 6750 §3)
_RAW_TRICKS = (b"%2f", b"%5c", b"%00", b"\\", b"\x00")
_ENCODINGS = (b"gzip", b"identity")
LOGIN_BODY_MAX = 16_384


class Verifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


class Revocations(Protocol):
    def is_revoked(self, principal: Principal) -> bool: ...


# The methods the public resource at a path has (the upstreams' OpenAPI), or None.
ResourceMethods = Callable[[str], Awaitable[tuple[str, ...] | None]]


class RouteTable:
    """Longest matching prefix wins; prefixes match whole path segments only."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    def match(self, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(path):
                return route
        return None


def path_trick(raw_path: bytes, path: str) -> str | None:
    """Why the path is refused (dot segments, encoded slashes, NUL), or None."""
    if b"%" in raw_path or b"\\" in raw_path or b"\x00" in raw_path:
        raw = raw_path.lower()
        if any(trick in raw for trick in _RAW_TRICKS):
            return "encoded slashes, backslashes and NUL are not allowed in paths"
    if "/." in path or "\x00" in path:
        segments = path.split("/")
        if "." in segments or ".." in segments or "\x00" in path:
            return "dot segments are not allowed in paths"
    return None


class EdgePolicy:
    """Everything the edge decides about a request, built from one config."""

    def __init__(
        self,
        config: GatewayConfig,
        verifier: Verifier,
        limiter: RateLimiter,
        revocations: Revocations,
        resource_methods: ResourceMethods | None = None,
    ) -> None:
        self.config = config
        self.resource_methods = resource_methods
        self.table = RouteTable(config.routes)
        self.verifier = verifier
        self.limiter = limiter
        self.revocations = revocations
        self.addresses = ClientAddress(config.trusted_proxies)
        self.limits = config.limits
        self._login_routes = frozenset(config.login.routes)

    async def admit(self, ex: Exchange, receive: Receive) -> Receive:
        """Decide; return the ``receive`` the proxy reads the body from.

        A CORS preflight stops after ``route`` (``ex.preflight``): the gateway answers it.
        """
        try:
            self.route(ex)
        except MethodNotAllowed:
            raise MethodNotAllowed(await self.allowed(ex)) from None
        if ex.preflight:
            return receive
        await self.identify(ex)
        receive = await self.limit(ex, receive)
        self.authorize(ex)
        self.check_body(ex)
        return receive

    async def admit_traced(self, ex: Exchange, receive: Receive) -> Receive:
        """``admit``, with a span for each stage that waits on something (auth, rate limit)."""
        try:
            self.route(ex)
        except MethodNotAllowed:
            raise MethodNotAllowed(await self.allowed(ex)) from None
        if ex.preflight:
            return receive
        with tracing.span("gateway", "auth"):
            await self.identify(ex)
        with tracing.span("gateway", "rate limit"):
            receive = await self.limit(ex, receive)
        self.authorize(ex)
        self.check_body(ex)
        return receive

    # -- route ------------------------------------------------------------------------

    def route(self, ex: Exchange) -> None:
        scope = ex.scope
        if reason := path_trick(bytes(scope.get("raw_path") or ex.path.encode()), ex.path):
            raise BadRequest(reason)
        route = self.table.match(ex.path)
        websocket = scope["type"] == "websocket"
        if route is None or (websocket and not route.websocket):
            raise NotFound(f"no route for {ex.path}")
        ex.route = route
        addresses = self.addresses
        ex.client_ip = addresses.client_ip(scope, ex.forwarded_for)
        ex.peer_trusted = addresses.is_trusted(addresses.peer(scope))
        ex.forwarded_chain = addresses.forwarded_for(scope, ex.forwarded_for)
        cors = self.config.cors.get(route.cors) if route.cors else None
        if cors is not None and ex.origin is not None:
            self._cors(ex, route, cors)
            if ex.preflight:
                return
        if websocket:
            return
        if route.websocket:
            raise UpgradeRequired("this route accepts WebSocket connections only")
        if not route.allows(ex.method):
            raise MethodNotAllowed(route.allowed_methods())

    async def allowed(self, ex: Exchange) -> tuple[str, ...]:
        """A 405's ``Allow``: the methods of the resource at this path (RFC 9110 §15.5.6),
        as the upstream's OpenAPI says, that the route passes; the route's when unknown."""
        assert ex.route is not None
        route_methods = ex.route.allowed_methods()
        if self.resource_methods is None:
            return route_methods
        resource = await self.resource_methods(ex.path)
        if resource is None:
            return route_methods
        return tuple(m for m in resource if m in route_methods)

    def _cors(self, ex: Exchange, route: Route, cors: Cors) -> None:
        origin = ex.origin or b""
        allowed = "*" in cors.allow_origins or origin.decode("latin-1") in cors.allow_origins
        if not allowed:
            if ex.method == "OPTIONS" and ex.preflight_method is not None:
                raise Forbidden("origin not allowed")
            return
        value = b"*" if "*" in cors.allow_origins and not cors.allow_credentials else origin
        ex.cors_headers = [(b"access-control-allow-origin", value), (b"vary", b"Origin")]
        if cors.allow_credentials:
            ex.cors_headers.append((b"access-control-allow-credentials", b"true"))
        if ex.method == "OPTIONS" and ex.preflight_method is not None:
            ex.preflight = True
            methods = ", ".join(route.allowed_methods()).encode()
            ex.cors_headers += [
                (b"access-control-allow-methods", methods),
                (b"access-control-allow-headers", ", ".join(cors.allow_headers).encode()),
                (b"access-control-max-age", str(cors.max_age).encode()),
            ]
        else:
            ex.cors_headers.append(
                (b"access-control-expose-headers", ", ".join(cors.expose_headers).encode())
            )

    # -- identify -----------------------------------------------------------------------

    async def identify(self, ex: Exchange) -> None:
        """Verify the bearer token of a non-public route; keep the principal or the error."""
        assert ex.route is not None
        if ex.route.public or ex.authorization is None:
            return
        token = bearer_token(ex.authorization)
        if token is None:
            ex.auth_error = Unauthorized("expected an Authorization: Bearer token")
            return
        try:
            principal = await self.verifier.verify(token)
        except Unauthorized as exc:
            exc.headers["WWW-Authenticate"] = _INVALID_TOKEN
            ex.auth_error = exc
            return
        if self.revocations.is_revoked(principal):
            error = Unauthorized("the token's session was revoked")
            error.headers["WWW-Authenticate"] = _INVALID_TOKEN
            ex.auth_error = error
            return
        ex.principal = principal

    # -- limit --------------------------------------------------------------------------

    async def limit(self, ex: Exchange, receive: Receive) -> Receive:
        """The route's policy per user (or client IP); login routes also per username."""
        assert ex.route is not None
        name = ex.route.rate_limit
        if name is not None:
            key = f"user:{ex.principal.subject}" if ex.principal else f"ip:{ex.client_ip}"
            await self._apply(ex, name, key)
        if ex.path in self._login_routes and ex.method == "POST":
            login = self.config.login
            await self._check(ex, "login-ip", login.per_ip, f"ip:{ex.client_ip}")
            body, receive = await _buffer(receive, LOGIN_BODY_MAX)
            if (username := _username(ex.media_type, body)) is not None:
                await self._check(ex, "login-user", login.per_username, f"user:{username}")
        return receive

    async def _apply(self, ex: Exchange, name: str, key: str) -> None:
        decision = await self.limiter.check(name, key)
        if decision is None:  # store down, failing open
            return
        policy = self.limiter.policies[name]
        ex.rate_headers = limit_headers(name, policy, decision)
        if not decision.allowed:
            raise too_many(name, policy, decision)

    async def _check(self, ex: Exchange, name: str, policy: RateLimitPolicy, key: str) -> None:
        decision = await self.limiter.check_policy(name, policy, key)
        if decision is not None and not decision.allowed:
            raise too_many(name, policy, decision)

    # -- authorize ------------------------------------------------------------------------

    def authorize(self, ex: Exchange) -> None:
        """401 without valid credentials, 403 without a role the route and method need.

        A WebSocket handshake without an ``Authorization`` header passes: browsers cannot
        set it; the WebSocket proxy then requires the first-message auth of DESIGN §12.
        """
        route = ex.route
        assert route is not None
        if route.public:
            return
        if ex.auth_error is not None:
            raise ex.auth_error
        if ex.principal is None:
            if ex.scope["type"] == "websocket":
                return
            raise Unauthorized("authentication required")
        self.check_roles(route, ex.method, ex.principal)

    @staticmethod
    def check_roles(route: Route, method: str, principal: Principal) -> None:
        needed = route.roles_for(method)
        if not principal.has_any(needed):
            raise Forbidden(f"{method} {route.prefix} needs one of the roles {list(needed)}")

    # -- body ---------------------------------------------------------------------------

    def check_body(self, ex: Exchange) -> None:
        """413 on a declared length over the limit, 415 on a wrong type or encoding.

        Streamed bodies are counted by the proxy as they pass (chunked cannot dodge it).
        """
        if ex.scope["type"] != "http" or not ex.has_body:
            return
        if ex.content_length is not None:
            if not ex.content_length.isdigit():
                raise BadRequest("invalid Content-Length")
            if int(ex.content_length) > self.limits.max_body_bytes:
                raise PayloadTooLarge(f"request body over {self.limits.max_body_bytes} bytes")
        if ex.content_encoding is not None and ex.content_encoding.lower() not in _ENCODINGS:
            raise UnsupportedMediaType("request bodies may be gzip-encoded or not encoded")
        wanted = ex.route.content_types if ex.route else None
        if wanted is not None and ex.media_type not in wanted:
            raise UnsupportedMediaType(f"expected a body of type {', '.join(wanted)}")


async def _buffer(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """Read a small body whole; return it and a ``receive`` that replays it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise PayloadTooLarge(f"login body over {limit} bytes")
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _username(media_type: str, body: bytes) -> str | None:
    try:
        if media_type == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode(), max_num_fields=20).get("username")
            name = values[0] if values else None
        else:
            data = json.loads(body)
            name = data.get("username") if isinstance(data, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return name.strip().lower()[:256] if isinstance(name, str) and name.strip() else None
