"""``call``: a registered method, run as the connection's user, asked over RPC.

Checks happen here, before any round trip: the method exists, the caller holds one
of its roles, the params fit its model. Then the handler asks the service that owns
the method over the bus's request/reply with the caller's context (token, a request
id of its own, traceparent, client IP, user agent, and the call's ``idempotency_key``),
so audit and idempotency apply there as for HTTP. A callee that is down or too slow
is a stable error (``rpc_unavailable``, ``rpc_timeout``) within ``call_timeout``,
never a hang.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gatehouse.common.errors import Forbidden, GatehouseError, NotFound, RpcUnavailable
from gatehouse.common.identity import Principal
from gatehouse.realtime import metrics
from gatehouse.realtime.registry import Call, Caller, Registry, Requester


class UnknownMethod(NotFound):
    code = "unknown_method"


class TooManyCalls(GatehouseError):
    status, code, title = 429, "too_many_calls", "Too Many Calls"


@dataclass(frozen=True, slots=True)
class Peer:
    """What the handshake said about the client (trusted forwarded headers only)."""

    traceparent: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class Calls:
    """The ``call`` methods of this service and the bus they ask through."""

    def __init__(self, registry: Registry, *, timeout: float, max_in_flight: int) -> None:
        self.registry, self.timeout, self.max_in_flight = registry, timeout, max_in_flight
        self.requester: Requester | None = None  # set by the app's lifespan

    async def run(
        self,
        principal: Principal,
        token: str,
        peer: Peer,
        name: str,
        params: Any,
        idempotency_key: str | None = None,
    ) -> Any:
        method = self.registry.get(name)
        if method is None:
            known = ", ".join(m.name for m in self.registry)
            raise UnknownMethod(f"unknown method {name[:64]!r}; known: {known}")
        if not principal.has_any(method.roles):
            raise Forbidden(f"{name} needs one of the roles {sorted(method.roles)}")
        parsed = method.parse(params)
        if self.requester is None:
            raise RpcUnavailable("no bus to ask the owner of the method")
        caller = Caller(
            principal,
            token,
            request_id=uuid.uuid4().hex,
            traceparent=peer.traceparent,
            client_ip=peer.client_ip,
            user_agent=peer.user_agent,
            idempotency_key=idempotency_key,
        )
        try:
            result = await method.handler(Call(caller, self.requester, self.timeout), parsed)
        except GatehouseError as exc:
            metrics.CALLS.labels(name, exc.code).inc()
            raise
        metrics.CALLS.labels(name, "ok").inc()
        return result
