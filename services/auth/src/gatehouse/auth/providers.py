"""The identity provider port and its embedded adapter.

``/auth/*`` talks to an :class:`IdentityProvider`; :class:`EmbeddedProvider` runs the
embedded issuer's logic in-process, ``gatehouse.auth.keycloak.KeycloakProvider`` asks
a real Keycloak over HTTP through python-keycloak.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatehouse.auth.embedded.issuer import Issuer, OAuthError
from gatehouse.common.errors import BadRequest, TooManyRequests, Unauthorized
from gatehouse.common.identity import Principal


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)

    @classmethod
    def from_response(cls, body: Mapping[str, Any]) -> TokenSet:
        """Read a Keycloak token response."""
        return cls(str(body["access_token"]), str(body["refresh_token"]), int(body["expires_in"]))


@dataclass(frozen=True, slots=True)
class UserInfo:
    subject: str
    username: str
    roles: tuple[str, ...]

    @classmethod
    def from_principal(cls, principal: Principal) -> UserInfo:
        return cls(principal.subject, principal.username, tuple(sorted(principal.roles)))


class IdentityProvider(abc.ABC):
    """Login, refresh, logout and userinfo, whoever issues the tokens.

    Errors are those of ``gatehouse.common.errors``: bad credentials or tokens raise
    ``Unauthorized``, a locked account ``TooManyRequests``, an unreachable
    provider ``ServiceUnavailable``.
    """

    async def start(self) -> None:  # noqa: B027 (optional hook)
        """Acquire resources (HTTP clients, keys)."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what ``start`` acquired."""

    @abc.abstractmethod
    async def login(self, username: str, password: str, address: str = "unknown") -> TokenSet:
        """Password login; ``address`` is the client's (failed logins are throttled by it)."""

    @abc.abstractmethod
    async def refresh(self, refresh_token: str) -> TokenSet: ...

    @abc.abstractmethod
    async def logout(self, refresh_token: str) -> None:
        """End the session of ``refresh_token``; an unknown or dead token is not an error."""

    @abc.abstractmethod
    async def userinfo(self, access_token: str) -> UserInfo: ...

    async def ready(self) -> bool:
        return True


class EmbeddedProvider(IdentityProvider):
    """The embedded issuer, called in-process."""

    def __init__(self, issuer: Issuer) -> None:
        self._issuer = issuer

    async def login(self, username: str, password: str, address: str = "unknown") -> TokenSet:
        try:
            body = await self._issuer.password_grant(username, password, address=address)
            return TokenSet.from_response(body)
        except OAuthError as exc:
            raise _to_gatehouse(exc) from None

    async def refresh(self, refresh_token: str) -> TokenSet:
        try:
            return TokenSet.from_response(await self._issuer.refresh_grant(refresh_token))
        except OAuthError as exc:
            raise _to_gatehouse(exc) from None

    async def logout(self, refresh_token: str) -> None:
        # Already logged out, expired or never valid: the session is gone either way.
        with contextlib.suppress(OAuthError):
            await self._issuer.logout(refresh_token)

    async def userinfo(self, access_token: str) -> UserInfo:
        try:
            claims = await self._issuer.verify_access_token(access_token)
        except OAuthError as exc:
            raise _to_gatehouse(exc) from None
        return UserInfo.from_principal(Principal.from_claims(claims, self._issuer.config.client_id))


def _to_gatehouse(error: OAuthError) -> Exception:
    if error.retry_after is not None:
        return TooManyRequests(
            "too many failed logins; try again later", retry_after=error.retry_after
        )
    if error.error in ("invalid_grant", "invalid_token", "invalid_client"):
        return Unauthorized(_PUBLIC_MESSAGES.get(error.description, error.description))
    return BadRequest(error.description)


_PUBLIC_MESSAGES = {
    "Invalid user credentials": "invalid username or password",
    "Invalid refresh token": "invalid or expired refresh token",
    "Token is not active": "invalid or expired refresh token",
    "Maximum allowed refresh token reuse exceeded": "refresh token already used; session revoked",
    "Token verification failed": "invalid or expired access token",
}
