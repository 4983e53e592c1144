"""The embedded Keycloak-compatible issuer: the logic behind Keycloak's OIDC endpoints.

It speaks OAuth: it raises :class:`OAuthError` shaped like Keycloak's answers
(``{"error": ..., "error_description": ...}``), and the routes in ``oidc_routes``
put it on the wire at Keycloak's paths.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from gatehouse.auth import metrics
from gatehouse.auth.embedded import refresh_grace
from gatehouse.auth.embedded.key_ring import KeyRing
from gatehouse.auth.embedded.keys import ALGORITHM, SigningKey
from gatehouse.auth.embedded.lockout import LoginThrottle
from gatehouse.auth.embedded.sessions import Clock, RefreshOutcome, Session, SessionStore
from gatehouse.auth.embedded.users import User, UserDirectory, subject_for

DEFAULT_SCOPES = ("profile", "email")
_ANSWERED = (RefreshOutcome.ROTATED, RefreshOutcome.GRACE)
_REFRESH_METRIC = {
    RefreshOutcome.ROTATED: "success",
    RefreshOutcome.GRACE: "grace",
    RefreshOutcome.UNKNOWN: "invalid",
    RefreshOutcome.EXPIRED: "expired",
    RefreshOutcome.REUSED: "reused",
}
_REFRESH_ERRORS = {
    RefreshOutcome.ROTATED: "Invalid refresh token",  # not reached: answered
    RefreshOutcome.GRACE: "Invalid refresh token",
    RefreshOutcome.UNKNOWN: "Invalid refresh token",
    RefreshOutcome.EXPIRED: "Token is not active",
    RefreshOutcome.REUSED: "Maximum allowed refresh token reuse exceeded",
}


class _UserGone(Exception):
    """The user of a session being refreshed no longer exists."""

    def __init__(self, session: Session) -> None:
        super().__init__(session.username)
        self.session = session


class OAuthError(Exception):
    """An OAuth error response, as Keycloak words it."""

    def __init__(
        self, error: str, description: str, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "Invalid client or Invalid client credentials", 401)


def too_many_logins(retry_after: int) -> OAuthError:
    """The same answer whether the username exists, is throttled, or is locked."""
    return OAuthError("invalid_grant", "Too many failed logins; try again later", 429, retry_after)


def invalid_token() -> OAuthError:
    return OAuthError("invalid_token", "Token verification failed", 401)


@dataclass(frozen=True, slots=True)
class IssuerConfig:
    issuer: str
    client_id: str
    client_secret: str | None
    access_ttl: int


class Issuer:
    """Signs Keycloak-shaped tokens for the users of a :class:`UserDirectory`."""

    def __init__(
        self,
        config: IssuerConfig,
        keys: KeyRing,
        users: UserDirectory,
        sessions: SessionStore,
        throttle: LoginThrottle,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self.keys = keys
        self.users = users
        self.sessions = sessions
        self.throttle = throttle
        self._clock = clock

    @property
    def key(self) -> SigningKey:
        """The key that signs now (it changes when a rotated key activates)."""
        return self.keys.signer(self._clock()).key

    def discovery(self) -> dict[str, Any]:
        base = f"{self.config.issuer}/protocol/openid-connect"
        return {
            "issuer": self.config.issuer,
            # Required by OIDC Discovery; it refuses every browser flow (direct grants only).
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "jwks_uri": f"{base}/certs",
            "introspection_endpoint": f"{base}/token/introspect",
            "grant_types_supported": ["password", "refresh_token", "client_credentials"],
            # RFC 8414's "none": the authorization endpoint hands out neither code nor token.
            "response_types_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "scopes_supported": ["openid", *DEFAULT_SCOPES],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "preferred_username"],
            "userinfo_signing_alg_values_supported": ["none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_post"],
        }

    def realm(self) -> dict[str, Any]:
        """Keycloak's realm page (``GET /realms/<realm>``), which python-keycloak's
        ``public_key()`` reads: the current signing key as base64 DER."""
        return {
            "realm": self.config.issuer.rsplit("/", 1)[-1],
            "public_key": self.key.public_key_der(),
            "token-service": f"{self.config.issuer}/protocol/openid-connect",
            "account-service": f"{self.config.issuer}/account",
            "tokens-not-before": 0,
        }

    def jwks(self) -> dict[str, Any]:
        """The signing key, a key about to sign, and retired keys whose tokens may live."""
        return {"keys": [entry.key.jwk() for entry in self.keys.published(self._clock())]}

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """Only the configured client may ask; its secret too when one is configured."""
        if client_id != self.config.client_id:
            raise invalid_client()
        expected = self.config.client_secret
        if expected and not hmac.compare_digest(expected.encode(), (client_secret or "").encode()):
            raise invalid_client()

    async def password_grant(
        self, username: str, password: str, scope: str = "", address: str = "unknown"
    ) -> dict[str, Any]:
        """Resource-owner password grant (Keycloak's "direct access grants").

        ``address``: the client's, as the trusted proxies tell it; the throttle counts
        failures per username and address (``embedded/lockout.py``).
        """
        admission = await self.throttle.admit(username, address)
        if not admission.admitted:
            metrics.login(admission.verdict.value)
            raise too_many_logins(admission.retry_after)
        user = None
        try:
            user = await self.users.authenticate(username, password)
        finally:
            await self.throttle.finish(admission, succeeded=user is not None)
        metrics.login("success" if user else "failure")
        if user is None:
            raise OAuthError("invalid_grant", "Invalid user credentials", 401)
        session, refresh = await self.sessions.start(
            user.username, self.config.client_id, _scope(scope)
        )
        return self._token_response(user, session, refresh)

    def client_credentials_grant(self, scope: str = "") -> dict[str, Any]:
        """The client's own service account (Keycloak's "service accounts roles").

        As Keycloak: only a confidential client, no refresh token and no session, so
        the token lives until it expires; ``check_client`` has verified the secret.
        """
        if not self.config.client_secret:
            raise OAuthError(
                "unauthorized_client", "Public client not allowed to retrieve service account"
            )
        scopes = _scope(scope)
        claims = self._service_account_claims(int(self._clock()))
        access = {**claims, "aud": [self.config.client_id, "account"], "typ": "Bearer"}
        response: dict[str, Any] = {
            "access_token": self.key.sign(
                {**access, "realm_access": {"roles": []}, "scope": scopes}
            ),
            "expires_in": self.config.access_ttl,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": scopes,
        }
        if "openid" in scopes.split():
            response["id_token"] = self.key.sign(
                {**claims, "aud": self.config.client_id, "typ": "ID"}
            )
        return response

    def _service_account_claims(self, now: int) -> dict[str, Any]:
        account = f"service-account-{self.config.client_id}"  # Keycloak's name for it
        return {
            "exp": now + self.config.access_ttl,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.config.issuer,
            "sub": subject_for(account),
            "azp": self.config.client_id,
            "client_id": self.config.client_id,
            "preferred_username": account,
            "email_verified": False,
        }

    async def refresh_grant(self, refresh_token: str) -> dict[str, Any]:
        """Refresh-token grant: rotation with reuse detection; a retry within the grace
        window gets the very answer of the first try (``sessions``, ``refresh_grace``)."""

        async def seal(session: Session, new_token: str) -> bytes:
            user = await self.users.get(session.username)
            if user is None:
                raise _UserGone(session)
            answer = self._token_response(user, session, new_token)
            return refresh_grace.seal(refresh_token, json.dumps(answer).encode())

        try:
            rotation = await self.sessions.rotate(refresh_token, self.config.client_id, seal)
        except _UserGone as gone:
            await self.sessions.revoke(gone.session)
            metrics.refresh("invalid")
            raise OAuthError("invalid_grant", "User not found") from None
        metrics.refresh(_REFRESH_METRIC[rotation.outcome])
        answer = refresh_grace.unseal(refresh_token, rotation.sealed) if rotation.sealed else None
        if answer is None or rotation.outcome not in _ANSWERED:
            raise OAuthError("invalid_grant", _REFRESH_ERRORS[rotation.outcome])
        body: dict[str, Any] = json.loads(answer)
        return body

    async def logout(self, refresh_token: str) -> None:
        session = await self.sessions.find_active(refresh_token)
        if session is None:
            raise OAuthError("invalid_grant", "Invalid refresh token")
        await self.sessions.revoke(session)

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """Claims of a valid access token of a live session; else ``invalid_token`` (401)."""
        try:
            claims = self.keys.verify(token, issuer=self.config.issuer, now=self._clock())
        except jwt.PyJWTError:
            raise invalid_token() from None
        if claims.get("typ") != "Bearer":
            raise invalid_token()
        # Only service-account tokens (client credentials) have no session; a user's
        # token always names its session, which must still be live.
        if "sid" in claims and not await self.sessions.get_active(str(claims["sid"])):
            raise invalid_token()
        return claims

    async def userinfo(self, token: str) -> dict[str, Any]:
        """OIDC userinfo: only for tokens granted the ``openid`` scope (as Keycloak 23+)."""
        claims = await self.verify_access_token(token)
        if "openid" not in str(claims.get("scope", "")).split():
            raise OAuthError("insufficient_scope", "Missing openid scope", 403)
        return {
            "sub": claims["sub"],
            "email_verified": False,
            "preferred_username": claims["preferred_username"],
        }

    async def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 answer for an access or refresh token of this issuer."""
        try:
            claims = await self.verify_access_token(token)
        except OAuthError:
            return await self._introspect_refresh(token)
        return {**claims, "active": True, "client_id": claims["azp"], "token_type": "Bearer"}

    async def _introspect_refresh(self, token: str) -> dict[str, Any]:
        session = await self.sessions.find_active(token)
        if session is None:
            return {"active": False}
        user = await self.users.get(session.username)
        return {
            "active": True,
            "token_type": "Refresh",
            "client_id": session.client_id,
            "sub": user.subject if user else None,
            "username": session.username,
            "sid": session.id,
            "exp": int(self._clock()) + session.refresh_expires_in(self._clock()),
        }

    def _token_response(self, user: User, session: Session, refresh: str) -> dict[str, Any]:
        now = int(self._clock())
        response: dict[str, Any] = {
            "access_token": self.key.sign(self._access_claims(user, session, now)),
            "expires_in": self.config.access_ttl,
            "refresh_expires_in": session.refresh_expires_in(now),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session.id,
            "scope": session.scope,
        }
        if "openid" in session.scope.split():
            response["id_token"] = self.key.sign(self._id_claims(user, session, now))
        return response

    def _base_claims(self, user: User, session: Session, now: int) -> dict[str, Any]:
        return {
            "exp": now + self.config.access_ttl,
            "iat": now,
            "auth_time": int(session.started_at),
            "jti": str(uuid.uuid4()),
            "iss": self.config.issuer,
            "sub": user.subject,
            "azp": self.config.client_id,
            "sid": session.id,
            "session_state": session.id,
            "preferred_username": user.username,
            "email_verified": False,
        }

    def _access_claims(self, user: User, session: Session, now: int) -> dict[str, Any]:
        return {
            **self._base_claims(user, session, now),
            "aud": [self.config.client_id, "account"],
            "typ": "Bearer",
            "realm_access": {"roles": list(user.roles)},
            "scope": session.scope,
        }

    def _id_claims(self, user: User, session: Session, now: int) -> dict[str, Any]:
        return {**self._base_claims(user, session, now), "aud": self.config.client_id, "typ": "ID"}


def _scope(requested: str) -> str:
    wanted = ["openid"] if "openid" in requested.split() else []
    return " ".join([*wanted, *DEFAULT_SCOPES])
