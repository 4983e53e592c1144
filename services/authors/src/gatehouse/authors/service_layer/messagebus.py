"""The message bus: the one place every command and query goes through, with its context.

``handle(message, context)`` looks the message up in the registry (its handler and
the roles it needs), checks the caller's roles (defence in depth: HTTP checks the
same registry earlier, the AMQP RPC server relies on this), and runs the handler
in a unit of work carrying the context. For a write it then records the
idempotent result (when the context has an ``Idempotency-Key``) and commits: the
change, its events and their audit entries in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from gatehouse.authors.domain.commands import Command
from gatehouse.authors.domain.model import Aggregate
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.errors import (
    IdempotencyKeyReused,
    database_unavailable,
    is_outage,
)
from gatehouse.authors.service_layer.messages import Query
from gatehouse.authors.service_layer.unit_of_work import AbstractUnitOfWork
from gatehouse.common.errors import Forbidden, GatehouseError, Unauthorized

Message = Command | Query
Handler = Callable[[Any, AbstractUnitOfWork], Awaitable[Any]]
UnitOfWorkFactory = Callable[[RequestContext, bool], AbstractUnitOfWork]
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Route:
    """What the bus knows of a message type: its handler and who may send it."""

    handler: Handler
    roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a write: the resource after it (``None`` once deleted), and whether it
    is the replay of an earlier request with the same ``Idempotency-Key``."""

    resource: dict[str, Any] | None
    replayed: bool = False


class MessageBus:
    def __init__(self, uow: UnitOfWorkFactory, routes: dict[type[Any], Route]) -> None:
        self._uow = uow
        self.routes = routes

    def roles(self, message_type: type[Any]) -> tuple[str, ...]:
        return self.routes[message_type].roles

    async def handle(self, message: Message, context: RequestContext) -> Any:
        """Run ``message`` for the caller of ``context``; a write answers an :class:`Outcome`."""
        route = self.routes[type(message)]
        authorize(context, route.roles)
        reading = isinstance(message, Query)
        try:
            async with self._uow(context, not reading) as uow:
                if isinstance(message, Query):
                    return await route.handler(message, uow)
                return await self._write(message, route, uow, context)
        except GatehouseError:
            raise
        except Exception as exc:
            if not is_outage(exc):
                raise
            raise database_unavailable(exc) from exc

    async def _write(
        self, message: Command, route: Route, uow: AbstractUnitOfWork, context: RequestContext
    ) -> Outcome:
        key = context.idempotency_key
        subject = context.principal.subject[:255] if context.principal else "system"
        fingerprint = _fingerprint(message)
        if key is not None:
            earlier = await uow.idempotency.claim(subject, key, fingerprint, IDEMPOTENCY_TTL)
            if earlier is not None:
                if earlier.fingerprint != fingerprint:
                    raise IdempotencyKeyReused()
                return Outcome(earlier.result["resource"], replayed=True)
        changed = await route.handler(message, uow)
        resource = changed.snapshot() if isinstance(changed, Aggregate) else None
        if key is not None:
            await uow.idempotency.complete(subject, key, {"resource": resource})
        await uow.commit()
        return Outcome(resource)


def authorize(context: RequestContext, roles: tuple[str, ...]) -> None:
    """401 without a principal, 403 without one of ``roles`` (``admin`` holds every role)."""
    if context.principal is None:
        raise Unauthorized("a bearer token is required")
    if not context.principal.has_any(roles):
        raise Forbidden(f"requires one of the roles: {', '.join(roles)}")


def _fingerprint(message: Command) -> str:
    """A digest of the request: the message type and every field of it."""
    fields = asdict(message) if is_dataclass(message) else {}
    raw = json.dumps([type(message).__name__, fields], sort_keys=True, default=_plain)
    return hashlib.sha256(raw.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
