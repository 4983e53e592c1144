"""The message bus: the one place every command and query goes through, with its context.

``handle(message, context)`` looks the message up in the registry (its handler and
the roles it needs), checks the caller's roles (defence in depth: HTTP checks the
same registry earlier, the AMQP RPC server relies on this), and runs the handler
in a unit of work carrying the context. For a write it then records the
idempotent result (when the context has an ``Idempotency-Key``) and commits: the
change, its events and their audit entries in one transaction. A write that is
refused (403, 404, 409, 412, 422...) is audited in a transaction of its own:
who tried what, and the problem it got.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from gatehouse.authors.adapters.outbox import Refusal
from gatehouse.authors.domain.commands import Command
from gatehouse.authors.domain.model import Aggregate
from gatehouse.authors.service_layer.cloudevents import refusal_entry
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
log = logging.getLogger("gatehouse.authors.audit")


@dataclass(frozen=True, slots=True)
class Audited:
    """What a write does, for the audit record of its refusal: ``("author", "created")``."""

    entity_type: str
    action: str


@dataclass(frozen=True, slots=True)
class Route:
    """What the bus knows of a message type: its handler, who may send it, and (for a
    write) what it does."""

    handler: Handler
    roles: tuple[str, ...]
    audited: Audited | None = None


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
        try:
            authorize(context, route.roles)
            return await self._run(message, route, context)
        except GatehouseError as exc:
            if isinstance(message, Command):
                refusal = Refusal(exc.status, exc.code, _fields(message))
                await self.refused(type(message), context, refusal, _target(message))
            raise

    async def refused(
        self,
        message_type: type[Any],
        context: RequestContext,
        refusal: Refusal,
        entity_id: str | None = None,
    ) -> None:
        """Audit a refused write (a caller with a token; a 4xx other than 401 and 429).
        Never raises: a refusal that cannot be recorded is logged, and the caller still
        gets the answer it was refused with."""
        audited = self.routes[message_type].audited
        if audited is None or context.principal is None or not _audited(refusal.status):
            return
        entry = refusal_entry(context, audited.entity_type, entity_id, audited.action, refusal)
        try:
            async with self._uow(context, True) as uow:
                await uow.outbox.refuse(entry)
                await uow.commit()
        except Exception:
            log.exception("could not audit the refused %s of %s", audited.action, context.actor)

    async def _run(self, message: Message, route: Route, context: RequestContext) -> Any:
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


def _audited(status: int) -> bool:
    """4xx answers to the caller's request; 401 (no one to name) and 429 (the rate
    limiter's, not a decision on the write) are not audited."""
    return 400 <= status < 500 and status not in (401, 429)


def _target(message: Command) -> str | None:
    target = getattr(message, "id", None)
    return str(target) if target is not None else None


def _fields(message: Command) -> tuple[str, ...]:
    """The names of the fields a write tried to set (a patch: the ones it names)."""
    changes = getattr(message, "changes", None)
    if isinstance(changes, dict):
        return tuple(sorted(str(name)[:64] for name in changes))
    names = asdict(message) if is_dataclass(message) else {}
    return tuple(sorted(n for n in names if n not in ("id", "if_match")))


def _fingerprint(message: Command) -> str:
    """A digest of the request: the message type and every field of it."""
    fields = asdict(message) if is_dataclass(message) else {}
    raw = json.dumps([type(message).__name__, fields], sort_keys=True, default=_plain)
    return hashlib.sha256(raw.encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot fingerprint {type(value).__name__}")
