"""``GET /internal/revocations``: the revocation list the gateway polls (CONTRACTS.md).

Not public API: the gateway routes public prefixes only and never ``/internal/*``
(tests/e2e/test_revocation.py checks it), the NetworkPolicies let only the gateway
reach the auth port, and the path is left out of the OpenAPI document. An item names
a session id or a subject, never a token.

With Keycloak (``KEYCLOAK_URL``) the list is always empty: Keycloak keeps its own
sessions, and its access tokens stay valid at the gateway until they expire.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from gatehouse.auth.embedded.revocations import RevocationLog, parse_cursor
from gatehouse.common.errors import BadRequest

router = APIRouter(prefix="/internal", include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/revocations")
async def revocation_list(
    request: Request,
    response: Response,
    after: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """Unexpired revocations stamped at or after ``after``; pass back ``cursor`` next time."""
    response.headers.update(NO_STORE)
    log: RevocationLog | None = request.state.revocations
    if log is None:
        return {"items": [], "cursor": _checked(after) or "0"}
    try:
        page = await log.since(after)
    except ValueError:
        raise _bad_cursor() from None
    return {"items": [item.item() for item in page.items], "cursor": page.cursor}


def _checked(after: str | None) -> str | None:
    if after is not None:
        try:
            parse_cursor(after)
        except ValueError:
            raise _bad_cursor() from None
    return after


def _bad_cursor() -> BadRequest:
    return BadRequest("after must be a cursor that this endpoint handed out")
