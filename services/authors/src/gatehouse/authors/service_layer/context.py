"""Who asks, and from where: travels with every message into the outbox row (audit)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from gatehouse.common.identity import Principal


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller of one command or query.

    ``principal`` is ``None`` only for the service's own work (never for a client).
    ``traceparent`` is the W3C trace context of the request; each event of the
    change carries it. ``idempotency_key`` (HTTP ``Idempotency-Key``) makes a
    write replay its first result instead of running twice.
    """

    principal: Principal | None
    request_id: str = field(default_factory=lambda: secrets.token_hex(16))
    traceparent: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None

    @property
    def actor(self) -> str:
        return self.principal.username if self.principal else "system"
