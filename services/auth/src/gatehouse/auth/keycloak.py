"""The identity provider adapter for a real Keycloak, through python-keycloak's async API.

Access tokens are verified locally with :class:`gatehouse.common.tokens.JWTVerifier`
(JWKS fetched once and cached, refreshed on an unknown ``kid``), never with
``KeycloakOpenID.a_decode_token``, which downloads the realm keys on every call.
``a_userinfo`` is not used either: it swaps a bearer header on the client it shares
between requests and restores it after an ``await``, so concurrent calls can leave one
user's token attached to later requests.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakConnectionError, KeycloakError

from gatehouse.auth import metrics
from gatehouse.auth.providers import IdentityProvider, TokenSet, UserInfo
from gatehouse.auth.settings import AuthSettings
from gatehouse.common.errors import (
    GatehouseError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
)
from gatehouse.common.tokens import JWTVerifier

log = logging.getLogger("gatehouse.auth.keycloak")
RETRY_AFTER = 5  # seconds, when a throttled grant's own Retry-After is out of reach


class KeycloakProvider(IdentityProvider):
    """Login, refresh and logout against ``<server_url>/realms/<realm>``."""

    def __init__(
        self,
        server_url: str,
        realm: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        issuer: str | None = None,
        timeout: int = 10,
    ) -> None:
        self._server_url = server_url.rstrip("/") + "/"
        self._realm = realm
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self.issuer = issuer or f"{server_url.rstrip('/')}/realms/{realm}"
        self._openid: KeycloakOpenID | None = None
        self._verifier: JWTVerifier | None = None

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> KeycloakProvider:
        assert settings.keycloak_url is not None
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        return cls(
            settings.keycloak_url,
            settings.realm,
            settings.client_id,
            secret,
            issuer=settings.issuer(),
        )

    async def start(self) -> None:
        self._openid = KeycloakOpenID(
            server_url=self._server_url,
            realm_name=self._realm,
            client_id=self._client_id,
            client_secret_key=self._client_secret,
            timeout=self._timeout,
        )
        self._verifier = JWTVerifier(self.issuer, self._client_id)
        await self._verifier.start()

    async def close(self) -> None:
        if self._verifier is not None:
            await self._verifier.close()
        if self._openid is not None:
            await self._openid.connection.aclose()

    async def ready(self) -> bool:
        return await self._require_verifier().ensure_ready()

    async def login(self, username: str, password: str, address: str = "unknown") -> TokenSet:
        # Keycloak sees this service's address, not ``address``: its own brute-force
        # detection counts per user (see the README).
        openid = self._require_openid()
        try:
            body = await openid.a_token(username=username, password=password)
        except KeycloakError as exc:
            error = _to_gatehouse(exc, "invalid username or password")
            metrics.login(_outcome(error, "failure"))
            raise error from None
        metrics.login("success")
        return TokenSet.from_response(body)

    async def refresh(self, refresh_token: str) -> TokenSet:
        openid = self._require_openid()
        try:
            body = await openid.a_refresh_token(refresh_token)
        except KeycloakError as exc:
            error = _to_gatehouse(exc, "invalid or expired refresh token")
            metrics.refresh(_outcome(error, "invalid"))
            raise error from None
        metrics.refresh("success")
        return TokenSet.from_response(body)

    async def logout(self, refresh_token: str) -> None:
        openid = self._require_openid()
        try:
            await openid.a_logout(refresh_token)
        except KeycloakError as exc:
            error = _to_gatehouse(exc, "")
            if not isinstance(error, Unauthorized):
                raise error from None
            # an unknown, expired or already revoked token: the session is gone either way

    async def userinfo(self, access_token: str) -> UserInfo:
        principal = await self._require_verifier().verify(access_token)
        return UserInfo.from_principal(principal)

    def _require_openid(self) -> KeycloakOpenID:
        if self._openid is None:
            raise ServiceUnavailable("identity provider not started")
        return self._openid

    def _require_verifier(self) -> JWTVerifier:
        if self._verifier is None:
            raise ServiceUnavailable("identity provider not started")
        return self._verifier


def _to_gatehouse(exc: KeycloakError, unauthorized: str) -> GatehouseError:
    """Map a python-keycloak error: a rejected grant is 401, a throttled one 429, an
    unreachable Keycloak 503."""
    if isinstance(exc, KeycloakConnectionError):
        return ServiceUnavailable("identity provider unreachable", retry_after=5)
    status = exc.response_code or 0
    error = _oauth_error(exc.response_body)
    if status == 429:  # the embedded issuer's throttle; python-keycloak drops Retry-After
        return TooManyRequests("too many failed logins; try again later", retry_after=RETRY_AFTER)
    if status == 401 or (status == 400 and error == "invalid_grant"):
        return Unauthorized(unauthorized)
    log.warning("Keycloak answered %s (%s)", status, error or "no error code")
    return UpstreamError("identity provider failed")


def _outcome(error: GatehouseError, refused: str) -> str:
    """The metric outcome of a failed grant: Keycloak refused it, or could not answer."""
    if isinstance(error, TooManyRequests):
        return "throttled"
    return refused if isinstance(error, Unauthorized) else "error"


def _oauth_error(body: Any) -> str:
    try:
        parsed = json.loads(body) if isinstance(body, bytes | str) else {}
    except ValueError:
        return ""
    return str(parsed.get("error", "")) if isinstance(parsed, dict) else ""
