"""FastAPI dependencies, each defined once as an ``Annotated`` alias.

The caller of an operation becomes a :class:`RequestContext` here: the verified
token's principal (its roles checked against the message bus registry, so 401
and 403 come before any body is looked at), the request id, the trace context,
the client address and user agent, and the ``Idempotency-Key``. A write refused
here (403), or for its body (:mod:`problems`), is audited through the message bus
like one the bus refuses itself.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gatehouse.authors.adapters.outbox import Refusal
from gatehouse.authors.bootstrap import Services
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.errors import InvalidParameter
from gatehouse.authors.service_layer.messagebus import authorize
from gatehouse.common import tracing
from gatehouse.common.errors import Forbidden, PreconditionRequired, Unauthorized
from gatehouse.common.logging import request_id_var
from gatehouse.common.requests import TrustedPeers

TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")
IDEMPOTENCY_KEY = r"^[\x21-\x7e]{1,255}$"
_bearer = HTTPBearer(auto_error=False, description="An access token of the Gatehouse issuer.")


async def get_services(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def caller(message_type: type[Any]) -> Callable[..., Awaitable[RequestContext]]:
    """A dependency: the context of a caller allowed to send ``message_type``."""

    async def context(request: Request, services: ServicesDep, credentials: Credentials) -> Any:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("a bearer token is required")
        principal = await services.verifier.verify(credentials.credentials)
        trusted = services.trusted.trusts(request.scope)
        found = RequestContext(
            principal,
            request_id=request_id_var.get() or secrets.token_hex(16),
            traceparent=traceparent(request, trusted),
            client_ip=client_ip(request, services.trusted),
            user_agent=(request.headers.get("user-agent") or "")[:512] or None,
        )
        try:
            authorize(found, services.messagebus.roles(message_type))
        except Forbidden as exc:
            await refused(request, services, message_type, found, Refusal(exc.status, exc.code))
            raise
        request.state.caller = (message_type, found)
        return found

    return context


async def refused(
    request: Request,
    services: Services,
    message_type: type[Any],
    context: RequestContext,
    refusal: Refusal,
) -> None:
    """Audit a write refused by the HTTP layer, on the resource its path names."""
    audited = services.messagebus.routes[message_type].audited
    target = request.path_params.get(f"{audited.entity_type}_id") if audited else None
    await services.messagebus.refused(message_type, context, refusal, _uuid(target))


def _uuid(value: Any) -> str | None:
    try:
        return str(UUID(str(value)[:64])) if value is not None else None
    except ValueError:
        return None


def with_key(context: RequestContext, key: str | None) -> RequestContext:
    return replace(context, idempotency_key=key) if key else context


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY,
        description="Makes the write safe to retry: the same key and body replay the "
        "first answer (for 24 h, per user); the same key with another body is a 422.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=256,
        description='The `ETag` you read (`"3"`): a 412 if the resource changed since.',
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", max_length=256, description="A 304 when it still matches."),
]


def traceparent(request: Request, trusted: bool) -> str:
    """The request's span (tracing on), else a trusted peer's W3C trace context when
    well-formed, else a new trace (sampled): what the events of the change carry."""
    current = tracing.current_traceparent()
    if current:
        return current
    given = request.headers.get("traceparent", "").strip().lower() if trusted else ""
    if TRACEPARENT.match(given):
        return given
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def client_ip(request: Request, trusted: TrustedPeers) -> str | None:
    """The kit's answer (the right-most ``X-Forwarded-For`` hop that is not a trusted
    proxy, or the peer), cut to what the audit column holds."""
    found = trusted.client_ip(request.scope)
    return None if found == "unknown" else found[:64]


async def reject_unknown_query(request: Request) -> None:
    """A 400 naming every query parameter the operation does not declare."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _declared(route))
    if unknown:
        raise InvalidParameter(", ".join(unknown), "unknown query parameter(s)")


_DECLARED: dict[int, frozenset[str]] = {}


def _declared(route: APIRoute) -> frozenset[str]:
    names = _DECLARED.get(id(route))
    if names is None:
        names = _DECLARED[id(route)] = frozenset(_query_names(route.dependant))
    return names


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def if_match(header: str | None, required: bool) -> int | None:
    """The version an ``If-Match`` names; ``None`` for ``*`` or no header."""
    if header is None:
        if required:
            raise PreconditionRequired("send If-Match with the ETag you read")
        return None
    value = header.strip()
    if value == "*":
        return None
    match = re.fullmatch(r'"(\d{1,9})"', value)
    if match is None:
        # A weak or foreign tag never matches strongly (RFC 9110 §13.1.1): 412, not 400.
        return -1
    return int(match.group(1))


def etag(version: int) -> str:
    return f'"{version}"'


def not_modified(header: str | None, version: int) -> bool:
    """``If-None-Match`` (weak comparison): a list of tags or ``*``."""
    if header is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag(version) in tags
