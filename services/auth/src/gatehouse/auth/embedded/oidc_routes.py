"""Keycloak's OIDC paths, served by the embedded issuer (``/realms/{realm}/...``).

These answer OAuth-style errors (``{"error", "error_description"}``), not problem+json,
because OAuth clients such as python-keycloak and the gateway's verifier parse them.
They are left out of the OpenAPI document: the public API is ``/auth/*``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from gatehouse.auth.api import client_address
from gatehouse.auth.embedded.issuer import Issuer, OAuthError, invalid_token
from gatehouse.common.tokens import bearer_token

MAX_FIELD = 8192  # longer than any token this issuer or Keycloak hands out
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter(prefix="/realms/{realm}", include_in_schema=False)


def _issuer(request: Request, realm: Annotated[str, Path(max_length=64)]) -> Issuer:
    issuer: Issuer = request.state.issuer
    if not issuer.config.issuer.endswith(f"/realms/{realm}"):
        raise OAuthError("not_found", "Realm does not exist", 404)
    return issuer


IssuerDep = Annotated[Issuer, Depends(_issuer)]
OIDC = "/protocol/openid-connect"


def oauth_error_response(error: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.error in ("invalid_token", "insufficient_scope"):  # RFC 6750 §3
        headers["WWW-Authenticate"] = (
            f'Bearer realm="gatehouse", error="{error.error}", '
            f'error_description="{error.description}"'
        )
    return JSONResponse(error.body(), error.status, headers=headers)


async def _form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=32, max_part_size=MAX_FIELD)


def _field(form: FormData, name: str, *, required: bool = True) -> str:
    value = form.get(name)
    if not isinstance(value, str) or value == "":
        if required:
            raise OAuthError("invalid_request", f"Missing form parameter: {name}")
        return ""
    if len(value) > MAX_FIELD:
        raise OAuthError("invalid_request", f"Form parameter too long: {name}")
    return value


def _client(issuer: Issuer, form: FormData) -> None:
    issuer.check_client(
        _field(form, "client_id", required=False) or None,
        _field(form, "client_secret", required=False) or None,
    )


@router.get("")
async def realm(issuer: IssuerDep) -> dict[str, Any]:
    return issuer.realm()


@router.get("/.well-known/openid-configuration")
async def discovery(issuer: IssuerDep) -> dict[str, Any]:
    return issuer.discovery()


@router.get(f"{OIDC}/certs")
async def certs(issuer: IssuerDep) -> dict[str, Any]:
    return issuer.jwks()


@router.post(f"{OIDC}/token")
async def token(request: Request, issuer: IssuerDep) -> Response:
    form = await _form(request)
    grant = _field(form, "grant_type")
    _client(issuer, form)
    if grant == "password":
        body = await issuer.password_grant(
            _field(form, "username"),
            _field(form, "password"),
            _field(form, "scope", required=False),
            address=client_address(request),
        )
    elif grant == "refresh_token":
        body = await issuer.refresh_grant(_field(form, "refresh_token"))
    elif grant == "client_credentials":
        body = issuer.client_credentials_grant(_field(form, "scope", required=False))
    else:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant[:64]}")
    return JSONResponse(body, headers=NO_STORE)


@router.api_route(f"{OIDC}/auth", methods=["GET", "POST"])
async def authorization(issuer: IssuerDep) -> Response:
    """The authorization endpoint that discovery must name: no browser flow is served
    here, and nothing is redirected (a ``redirect_uri`` here is unchecked)."""
    raise OAuthError(
        "unsupported_response_type",
        "Only direct grants (password, refresh_token, client_credentials) are served",
    )


@router.api_route(f"{OIDC}/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, issuer: IssuerDep) -> Response:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise invalid_token()
    return JSONResponse(await issuer.userinfo(token), headers=NO_STORE)


@router.post(f"{OIDC}/logout")
async def logout(request: Request, issuer: IssuerDep) -> Response:
    form = await _form(request)
    _client(issuer, form)
    await issuer.logout(_field(form, "refresh_token"))
    return Response(status_code=204, headers=NO_STORE)


@router.post(f"{OIDC}/token/introspect")
async def introspect(request: Request, issuer: IssuerDep) -> Response:
    form = await _form(request)
    _client(issuer, form)
    return JSONResponse(await issuer.introspect(_field(form, "token")), headers=NO_STORE)
