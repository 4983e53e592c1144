"""``/auth/admin/users``: create, list, disable users, set passwords, grant and revoke roles.

AdminRole ``admin`` only, checked here as well as at the gateway (defence in depth): the
bearer token must verify and name ``admin``, and with the embedded issuer the user
must still hold ``admin`` and be enabled now, whatever the token says.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from gatehouse.auth.admin.schemas import (
    MAX_PAGE,
    MAX_PER_PAGE,
    USERNAME_PATTERN,
    AdminAuditPage,
    AdminNewUser,
    AdminPageMeta,
    AdminRole,
    AdminUser,
    AdminUserPage,
    AdminUserPatch,
)
from gatehouse.auth.admin.service import Actor, UserAdmin, user_data
from gatehouse.auth.embedded.sql_users import Row
from gatehouse.auth.providers import IdentityProvider
from gatehouse.auth.schemas import MAX_USERNAME
from gatehouse.common.errors import Forbidden, GatehouseError, Unauthorized
from gatehouse.common.identity import ADMIN
from gatehouse.common.requests import TrustedPeers, current_request, note_user
from gatehouse.common.tokens import bearer_token


class NotImplementedHere(GatehouseError):
    """The identity provider in use does not offer this (501)."""

    status, code, title = 501, "not_implemented", "Not Implemented"


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The request is malformed.",
        401: "No valid bearer token.",
        403: "The caller is not an admin.",
        404: "No such user (or role held).",
        409: "The change conflicts with the user's state.",
        422: "The body or a parameter is not valid.",
        501: "Users are managed in Keycloak (KEYCLOAK_URL is set).",
    }
    return {status: {"description": described[status]} for status in (401, 403, 501, *statuses)}


router = APIRouter(prefix="/auth/admin", tags=["admin"])
# The pattern of new usernames: no dot segment, slash or escape that a proxy would refuse.
UsernamePath = Annotated[str, Path(min_length=1, max_length=MAX_USERNAME, pattern=USERNAME_PATTERN)]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PerPageQuery = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]


async def _actor(request: Request) -> Actor:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("an Authorization: Bearer token is required")
    provider: IdentityProvider = request.state.provider
    info = await provider.userinfo(token)
    note_user(info.username)
    if ADMIN not in info.roles:
        raise Forbidden("the admin role is required")
    admin: UserAdmin | None = request.state.admin
    if admin is None:
        raise NotImplementedHere(
            "users are managed in Keycloak's admin console or REST API when KEYCLOAK_URL is set"
        )
    current = await admin.directory.get(info.username)
    if current is None or ADMIN not in current.roles:
        raise Forbidden("the admin role is required")
    return _describe(request, info.subject, info.username, info.roles)


def _describe(request: Request, subject: str, username: str, roles: tuple[str, ...]) -> Actor:
    peers: TrustedPeers = request.state.peers
    served = current_request()
    return Actor(
        subject=subject,
        username=username,
        roles=roles,
        ip=peers.client_ip(request.scope),
        user_agent=request.headers.get("user-agent", ""),
        request_id=served.request_id if served else "",
    )


def _admin(request: Request) -> UserAdmin:
    admin: UserAdmin = request.state.admin
    return admin


ActorDep = Annotated[Actor, Depends(_actor)]
AdminDep = Annotated[UserAdmin, Depends(_admin)]


def _out(row: Row) -> AdminUser:
    return AdminUser.model_validate(user_data(row))


def _meta(page: int, per_page: int, total: int) -> AdminPageMeta:
    return AdminPageMeta(page=page, per_page=per_page, total=total, pages=-(-total // per_page))


@router.post(
    "/users",
    status_code=201,
    response_model=AdminUser,
    responses=_problems(400, 409, 422),
)
async def create_user(
    body: Annotated[AdminNewUser, Body()], actor: ActorDep, admin: AdminDep, response: Response
) -> AdminUser:
    """Create a user with a password and roles of DESIGN §12 (409 when the name is taken).

    The change is audited and published as `gatehouse.user.created`.
    """
    row = await admin.create(actor, body)
    response.headers["Location"] = f"/auth/admin/users/{row.user.username}"
    return _out(row)


@router.get("/users", response_model=AdminUserPage, responses=_problems(400, 422))
async def list_users(
    actor: ActorDep, admin: AdminDep, page: PageQuery = 1, per_page: PerPageQuery = 20
) -> AdminUserPage:
    """Users in username order, `per_page` (at most 100) at a time."""
    rows, total = await admin.page(page, per_page)
    return AdminUserPage(items=[_out(r) for r in rows], meta=_meta(page, per_page, total))


@router.get("/users/{username}", response_model=AdminUser, responses=_problems(400, 404, 422))
async def get_user(username: UsernamePath, actor: ActorDep, admin: AdminDep) -> AdminUser:
    """One user: roles, whether enabled, and the `sub` of their tokens."""
    return _out(await admin.get(username))


@router.patch(
    "/users/{username}", response_model=AdminUser, responses=_problems(400, 404, 409, 422)
)
async def update_user(
    username: UsernamePath,
    body: Annotated[AdminUserPatch, Body()],
    actor: ActorDep,
    admin: AdminDep,
) -> AdminUser:
    """Enable or disable a user, or set their password.

    Disabling a user, or setting their password, ends their sessions: they cannot refresh,
    and the gateway refuses the access tokens they hold within seconds. A disabled user
    cannot log in. An admin cannot disable themselves (409). Audited and published as
    `gatehouse.user.updated`.
    """
    return _out(await admin.update(actor, username, body))


@router.put(
    "/users/{username}/roles/{role}",
    response_model=AdminUser,
    responses=_problems(400, 404, 422),
)
async def grant_role(
    username: UsernamePath, role: AdminRole, actor: ActorDep, admin: AdminDep
) -> AdminUser:
    """Give a user a role (granting a role they hold changes nothing).

    Their next token carries it. Audited and published as `gatehouse.user.role_granted`.
    """
    return _out(await admin.grant(actor, username, str(role)))


@router.delete(
    "/users/{username}/roles/{role}",
    response_model=AdminUser,
    responses=_problems(400, 404, 409, 422),
)
async def revoke_role(
    username: UsernamePath, role: AdminRole, actor: ActorDep, admin: AdminDep
) -> AdminUser:
    """Take a role away (404 when the user does not hold it).

    The gateway refuses the user's current access tokens within seconds; a refresh gets
    one with the roles they hold now. An admin cannot take their own `admin` role (409).
    Audited and published as `gatehouse.user.role_revoked`.
    """
    return _out(await admin.revoke(actor, username, str(role)))


@router.get("/audit", response_model=AdminAuditPage, responses=_problems(400, 422))
async def audit_trail(
    actor: ActorDep, admin: AdminDep, page: PageQuery = 1, per_page: PerPageQuery = 20
) -> AdminAuditPage:
    """Every change made through this API, newest first: who, what, when, from where."""
    records, total = await admin.audit_page(page, per_page)
    return AdminAuditPage.model_validate(
        {"items": records, "meta": _meta(page, per_page, total).model_dump()}
    )
