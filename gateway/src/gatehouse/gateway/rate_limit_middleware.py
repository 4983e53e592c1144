"""Apply the route's rate-limit policy to the user (or the client IP) (pure ASGI)."""

from __future__ import annotations

from gatehouse.common.types import ASGIApp, Message, Receive, Scope, Send
from gatehouse.gateway.asgi import principal_of, route_of
from gatehouse.gateway.client_ip import ClientAddress
from gatehouse.gateway.rate_limit import RateLimiter, limit_header, policy_header, too_many


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter, addresses: ClientAddress) -> None:
        self.app = app
        self.limiter = limiter
        self.addresses = addresses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = route_of(scope).rate_limit if scope["type"] in ("http", "websocket") else None
        if name is None:
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.check(name, self._key(scope))
        if decision is None:  # store down, failing open
            await self.app(scope, receive, send)
            return
        policy = self.limiter.policies[name]
        if not decision.allowed:
            raise too_many(name, policy, decision)
        headers = [
            (b"ratelimit-policy", policy_header(name, policy)),
            (b"ratelimit", limit_header(name, decision)),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _key(self, scope: Scope) -> str:
        principal = principal_of(scope)
        if principal is not None:
            return f"user:{principal.subject}"
        return f"ip:{self.addresses.client_ip(scope)}"
