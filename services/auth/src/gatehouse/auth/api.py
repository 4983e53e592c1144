"""The public API: ``/auth/token``, ``/auth/refresh``, ``/auth/logout``, ``/auth/me``."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from gatehouse.auth.providers import IdentityProvider, TokenSet
from gatehouse.auth.schemas import Credentials, Me, RefreshRequest, TokenResponse
from gatehouse.common.errors import PayloadTooLarge, Unauthorized, ValidationFailed
from gatehouse.common.requests import TrustedPeers

MAX_BODY = 16 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _provider(request: Request) -> IdentityProvider:
    provider: IdentityProvider = request.state.provider
    return provider


def client_address(request: Request) -> str:
    """The client's address: the peer's, or what a trusted proxy (``GATEHOUSE_TRUSTED_PROXIES``)
    forwarded in ``X-Forwarded-For``."""
    peers: TrustedPeers = request.state.peers
    return peers.client_ip(request.scope)


ProviderDep = Annotated[IdentityProvider, Depends(_provider)]
ClientAddressDep = Annotated[str, Depends(client_address)]
# Declares the bearer scheme in OpenAPI; a missing header is answered by ``me`` itself.
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
router = APIRouter(prefix="/auth", tags=["auth"])

_CREDENTIALS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": Credentials.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": Credentials.model_json_schema()},
        },
    }
}
_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Bad credentials."}}
# What each route answers besides FastAPI's own: the token route reads its body itself
# (so FastAPI documents no 422 for it), and a body that is not UTF-8 is FastAPI's 400.
_TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    **_UNAUTHORIZED,
    422: {"description": "No username and password, or a body that is not JSON or a form."},
    429: {
        "description": "Too many failed logins for this username (from this address, or "
        "a hard lock): wait `Retry-After` seconds. The same answer whether the username "
        "exists or not.",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body could not be read (not UTF-8)."}
}


async def _credentials(request: Request) -> Credentials:
    """Credentials from a JSON body or an OAuth2 password form (RFC 6749 §4.3)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = await request.form(max_files=0, max_fields=16, max_part_size=MAX_BODY)
            return Credentials.model_validate(dict(form))
        return Credentials.model_validate(json.loads(await _body(request)))
    except ValidationError as exc:
        raise ValidationFailed("username and password are required", errors=_errors(exc)) from None
    except ValueError:
        raise ValidationFailed("the body is not valid JSON") from None


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(f"the body may not exceed {MAX_BODY} bytes")
    return bytes(body)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def _token_response(tokens: TokenSet, response: Response) -> TokenResponse:
    response.headers.update(NO_STORE)
    return TokenResponse(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type=tokens.token_type,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/token",
    response_model=TokenResponse,
    responses=_TOKEN_ERRORS,
    openapi_extra=_CREDENTIALS_BODY,
)
async def token(
    request: Request, response: Response, provider: ProviderDep, address: ClientAddressDep
) -> TokenResponse:
    """Log in with a username and password.

    Send JSON `{"username": ..., "password": ...}` or an OAuth2 password form.
    Answers an access token (a JWT for `Authorization: Bearer`) and a refresh token.

    Failed logins slow down further attempts, never the owner elsewhere: after a few
    failures for one username from one client address, that address waits 1, 2, 4, ...
    seconds between attempts (429 with `Retry-After`); after more failures from any
    addresses, every address that has failed for the username waits too, while an
    address without failures still logs in. Only after many more failures (100 by
    default) is the username locked for everyone for a while (also 429).
    """
    credentials = await _credentials(request)
    tokens = await provider.login(credentials.username, credentials.password, address)
    return _token_response(tokens, response)


@router.post("/refresh", response_model=TokenResponse, responses={**_UNAUTHORIZED, **_BODY_ERRORS})
async def refresh(body: RefreshRequest, response: Response, provider: ProviderDep) -> TokenResponse:
    """Trade a refresh token for new tokens.

    Each refresh token works once: the answer carries its replacement. A retry with the
    same refresh token within a few seconds (`GATEHOUSE_AUTH_REFRESH_GRACE_SECONDS`,
    default 5), as after a lost response, gets the same answer again, as long as the
    new refresh token has not been used. Presenting a replaced refresh token later, or
    after its replacement was used, ends the whole session (401).
    """
    return _token_response(await provider.refresh(body.refresh_token), response)


@router.post("/logout", status_code=204, response_class=Response, responses=_BODY_ERRORS)
async def logout(body: RefreshRequest, provider: ProviderDep) -> Response:
    """End the session of a refresh token. Logging out twice is not an error."""
    await provider.logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=Me, responses=_UNAUTHORIZED)
async def me(bearer: BearerDep, provider: ProviderDep) -> Me:
    """Who the bearer of the access token is: subject, username and roles."""
    if bearer is None or not bearer.credentials:
        raise Unauthorized("an Authorization: Bearer token is required")
    info = await provider.userinfo(bearer.credentials)
    return Me(sub=info.subject, username=info.username, roles=list(info.roles))
