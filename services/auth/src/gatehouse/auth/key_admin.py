"""``POST /auth/admin/keys/rotate``: the embedded issuer's key rotation for the ``admin`` role.

The caller's bearer token is verified here (the gateway verified it too, but auth trusts
no header of its own callers); every attempt is written to the audit log
(``gatehouse.auth.audit``: who, roles, action, resource, outcome, address, user agent,
request id). A rotation is refused (409) while the last rotation's key is younger than
``MIN_INTERVAL``: verifiers reload their JWKS at most once per 10 s, so keys following
each other faster could be refused for a while.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gatehouse.auth.embedded.key_store import KeyRingWatcher
from gatehouse.auth.providers import IdentityProvider, UserInfo
from gatehouse.auth.settings import AuthSettings
from gatehouse.common.errors import Conflict, Forbidden, Unauthorized
from gatehouse.common.identity import ADMIN
from gatehouse.common.logging import request_id_var

audit = logging.getLogger("gatehouse.auth.audit")
MIN_INTERVAL = 60.0
ACTION = "signing_key.rotate"

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class RotateKeys(BaseModel):
    # strict: JSON true/false are not 1.0/0.0 seconds (an integer still is)
    activate_in: float | None = Field(
        None, ge=0, le=86400, strict=True, description="Seconds until the new key signs."
    )


class RotatedKey(BaseModel):
    kid: str
    activates_at: float
    published: list[str]


async def _admin(request: Request, bearer: BearerDep) -> UserInfo:
    if bearer is None or not bearer.credentials:
        raise Unauthorized("an Authorization: Bearer token is required")
    provider: IdentityProvider = request.state.provider
    user = await provider.userinfo(bearer.credentials)
    if ADMIN not in user.roles:
        _audit(request, user, "denied", "role admin required")
        raise Forbidden("the admin role is required")
    return user


AdminDep = Annotated[UserInfo, Depends(_admin)]


def key_admin_router(settings: AuthSettings) -> APIRouter:
    """The key-rotation route, with the activation default of ``settings``."""
    router = APIRouter(prefix="/auth/admin/keys", tags=["admin"])

    @router.post(
        "/rotate",
        status_code=201,
        response_model=RotatedKey,
        responses={
            400: {"description": "The body could not be read (not UTF-8)."},
            401: {"description": "No valid bearer token."},
            403: {"description": "The token lacks the admin role."},
            409: {"description": f"The newest key is younger than {MIN_INTERVAL:.0f} s."},
        },
    )
    async def rotate(
        request: Request,
        user: AdminDep,
        body: RotateKeys | None = None,
    ) -> RotatedKey:
        """Add a signing key to the embedded issuer (role `admin`; audited).

        The new key is published in the JWKS at once and signs from `activate_in`
        seconds on (default `GATEHOUSE_AUTH_KEY_ACTIVATION_SECONDS`) on every replica;
        the previous key stays published until every token it signed has expired.
        """
        keys: KeyRingWatcher = request.state.keys
        if _rotated_lately(keys):
            _audit(request, user, "refused", "the newest key is too young")
            raise Conflict(f"the newest signing key is younger than {MIN_INTERVAL:.0f} s")
        wanted = body.activate_in if body else None
        delay = settings.key_activation_seconds if wanted is None else wanted
        added = await keys.store.rotate(delay)
        await keys.store.refresh(keys.ring)  # this replica publishes it right away
        _audit(request, user, "success", added.kid)
        published = [entry.kid for entry in keys.ring.published(time.time())]
        return RotatedKey(kid=added.kid, activates_at=added.activates_at, published=published)

    return router


def _rotated_lately(keys: KeyRingWatcher) -> bool:
    """Whether a rotation added a key less than ``MIN_INTERVAL`` ago (the key installed
    at the first start is no rotation)."""
    entries = keys.ring.entries
    return len(entries) > 1 and time.time() - max(e.created_at for e in entries) < MIN_INTERVAL


def _audit(request: Request, user: UserInfo, outcome: str, detail: str) -> None:
    record: dict[str, Any] = {
        "user": user.username,
        "subject": user.subject,
        "roles": list(user.roles),
        "action": ACTION,
        "resource": "auth_signing_keys",
        "outcome": outcome,
        "detail": detail,
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
        "request_id": request_id_var.get(),
    }
    audit.info(
        "audit %s %s by %s: %s", ACTION, outcome, user.username, detail, extra={"fields": record}
    )
