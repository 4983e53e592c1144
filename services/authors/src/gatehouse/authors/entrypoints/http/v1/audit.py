"""``/v1/audit``: who changed what and when (the outbox, read back; append-only)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from gatehouse.authors.entrypoints.http import params, responses
from gatehouse.authors.entrypoints.http.dependencies import (
    ServicesDep,
    caller,
    reject_unknown_query,
)
from gatehouse.authors.entrypoints.http.problems import problems
from gatehouse.authors.entrypoints.schemas import AuditPage
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.pagination import CURSOR_PATTERN, MAX_PER_PAGE

router = APIRouter(tags=["audit"], dependencies=[Depends(reject_unknown_query)])
Auditor = Annotated[RequestContext, Depends(caller(messages.ListAudit))]


@router.get(
    "/v1/audit",
    summary="Read the audit trail",
    response_model=AuditPage,
    responses=problems(400, 401, 403, 429, 503),
    openapi_extra={"x-roles": ["view-audit-logs"]},
)
async def list_audit(
    services: ServicesDep,
    context: Auditor,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="`meta.next_cursor`.")
    ] = None,
    entity_type: Annotated[str | None, Query(pattern="^(author|book)$")] = None,
    entity_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=255, description="Username.")] = None,
    action: Annotated[str | None, Query(pattern="^(created|updated|deleted)$")] = None,
    since: params.Since = None,
    until: params.Until = None,
    outcome: Annotated[
        str | None,
        Query(
            pattern="^(succeeded|refused)$",
            description="`succeeded` (default): the changes made; `refused`: the writes "
            "that were refused (403, 404, 409, 412, 422...), who tried them and why.",
        ),
    ] = None,
) -> Response:
    """Role `view-audit-logs`. Newest first; every filter given must hold (AND).
    Each record: who (subject, username, roles), from where (IP, user agent),
    which request (request id, traceparent), the event, and per changed field its
    value before and after. With `outcome=refused`, the writes that were refused
    instead: who tried which action on what, the answer's status and problem `code`,
    and the names of the fields the request tried to set (not their values).
    Nothing in the API changes or deletes a record."""
    query = messages.ListAudit(
        limit, cursor, entity_type, entity_id, actor, action, since, until, outcome
    )
    found = await services.messagebus.handle(query, context)
    return responses.listing(found.items, found.meta())
