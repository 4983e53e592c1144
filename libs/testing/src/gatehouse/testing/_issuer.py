"""The in-memory identity provider: a small but real OIDC issuer.

The identity provider is an outside boundary of every Gatehouse service. Tests do not
mock the verifier; they stand up :class:`TestIssuer`, a small but real OIDC issuer
(the in-memory adapter of the identity provider, as ``httpx.MockTransport`` is of
HTTP): it signs Keycloak-shaped RS256 access tokens and publishes its keys, either
in process (:meth:`TestIssuer.handler` behind ``httpx.MockTransport``) or over real
sockets (the instance is an ASGI app; see :func:`serve_issuer`)::

    issuer = TestIssuer()
    http = httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler))
    verifier = JWTVerifier(issuer.issuer_url, "gatehouse", http=http)

    async with serve_issuer() as issuer, serve(create_app(settings_for(issuer))) as url:
        await client.get(url + "/api", headers=issuer.bearer(["get-authors"]))
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gatehouse.common.types import Receive, Scope, Send
from gatehouse.testing._server import serve

DEFAULT_ISSUER_URL = "http://issuer.test/realms/gatehouse"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/protocol/openid-connect/certs"  # where Keycloak publishes its keys


class TestIssuer:
    """An OIDC issuer with RS256 keys: discovery, JWKS and Keycloak-shaped access tokens.

    ``roles`` and ``claims`` are what :meth:`token` puts in a token when the caller
    does not say otherwise. ``issuer_url`` may be changed after construction (a
    served issuer only learns its port once bound); its path is where discovery and
    JWKS are served. ``jwks_requests`` counts the key-set fetches.
    """

    __test__ = False  # a test double: pytest must not collect it as a test class

    def __init__(
        self,
        issuer_url: str = DEFAULT_ISSUER_URL,
        *,
        kid: str = "test-key",
        audience: str = "gatehouse",
        roles: Iterable[str] = (),
        **claims: Any,
    ) -> None:
        self.issuer_url = issuer_url
        self.audience = audience
        self.roles = tuple(roles)
        self.claims = claims
        self.jwks_requests = 0
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = kid
        self.rotate_key(kid)

    def rotate_key(self, kid: str) -> None:
        """Publish a new key under ``kid`` and sign with it; older keys stay published."""
        self._keys[kid] = _new_key()
        self.kid = kid

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public half of the current signing key."""
        return self._keys[self.kid].public_key()

    def token(self, roles: Iterable[str] | None = None, *, ttl: float = 300, **claims: Any) -> str:
        """An access token with ``roles`` valid for ``ttl`` seconds.

        ``claims`` override the defaults (``iss``, ``sub``, ``aud``, ``azp``, ``typ``,
        ``iat``, ``exp``, ``jti``, ``scope``, ``preferred_username``, ...); a claim set
        to ``None`` is left out of the token.
        """
        payload = self._claims(roles, ttl, claims)
        return _sign(payload, self._keys[self.kid], self.kid)

    def bearer(self, roles: Iterable[str] | None = None, **claims: Any) -> dict[str, str]:
        """An ``Authorization: Bearer`` header carrying :meth:`token`."""
        return {"Authorization": f"Bearer {self.token(roles, **claims)}"}

    def forged_token(
        self,
        roles: Iterable[str] | None = None,
        *,
        kid: str | None = None,
        ttl: float = 300,
        **claims: Any,
    ) -> str:
        """A token naming this issuer, signed with a key it never published.

        Its header names ``kid``; by default the current signing key's id, so that
        only the signature gives it away.
        """
        payload = self._claims(roles, ttl, claims)
        return _sign(payload, _new_key(), kid or self.kid)

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata a verifier reads."""
        return {"issuer": self.issuer_url, "jwks_uri": self.issuer_url + JWKS_PATH}

    def jwks(self) -> dict[str, Any]:
        """The published key set (counted in ``jwks_requests``)."""
        self.jwks_requests += 1
        return {"keys": [_jwk(kid, key) for kid, key in self._keys.items()]}

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` in process: the handler of an ``httpx.MockTransport``."""
        status, body = self._respond(request.url.path)
        return httpx.Response(status, json=body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve discovery and JWKS as an ASGI app."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = self._respond(scope["path"])
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    def _respond(self, path: str) -> tuple[int, dict[str, Any]]:
        base = urlsplit(self.issuer_url).path
        if path == base + DISCOVERY_PATH:
            return 200, self.discovery()
        if path == base + JWKS_PATH:
            return 200, self.jwks()
        return 404, {"error": "not_found"}

    def _claims(
        self, roles: Iterable[str] | None, ttl: float, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer_url,
            "sub": "user-1",
            "aud": [self.audience, "account"],
            "azp": self.audience,
            "typ": "Bearer",
            "iat": now,
            "exp": int(now + ttl),
            "jti": str(uuid.uuid4()),
            "scope": "openid profile email",
            "realm_access": {"roles": list(self.roles if roles is None else roles)},
            **self.claims,
            **overrides,
        }
        claims.setdefault("preferred_username", claims["sub"])
        return {name: value for name, value in claims.items() if value is not None}


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(claims: dict[str, Any], key: rsa.RSAPrivateKey, kid: str) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@contextlib.asynccontextmanager
async def serve_issuer(
    issuer: TestIssuer | None = None, **uvicorn_options: Any
) -> AsyncIterator[TestIssuer]:
    """Serve ``issuer`` (a new :class:`TestIssuer` by default) over loopback HTTP.

    Its ``issuer_url`` moves to the served address, keeping the realm path.
    """
    issuer = issuer or TestIssuer()
    path = urlsplit(issuer.issuer_url).path
    async with serve(issuer, **uvicorn_options) as url:
        issuer.issuer_url = url + path
        yield issuer
