"""JWT verification against an OIDC issuer's discovery document and JWKS.

Keys are fetched once, cached, and refreshed when a token names an unknown ``kid``
(one refresh at a time, at most once per ``min_refresh_interval`` seconds), so a
flood of forged ``kid`` values cannot turn into a flood of JWKS requests.
Only asymmetric algorithms are accepted: ``alg: none`` and HS/RS confusion fail.

Verified tokens are remembered (keyed by their SHA-256, LRU, bounded) for at most
``cache_ttl`` seconds and never past their ``exp``, so a gateway does not pay an
RS256 verification per request; any change of the issuer's keys empties the cache,
so a removed or rotated key stops being honoured as soon as it would without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from gatehouse.common.errors import ServiceUnavailable, Unauthorized
from gatehouse.common.identity import Principal
from gatehouse.common.requests import note_user

log = logging.getLogger("gatehouse.jwt")
ALGORITHMS = ("RS256", "ES256")


class JWTVerifier:
    """Verify bearer tokens of one issuer; ``start()`` loads the keys."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        http: httpx.AsyncClient | None = None,
        jwks_url: str | None = None,
        leeway: float = 30.0,
        min_refresh_interval: float = 10.0,
        cache_size: int = 10_000,
        cache_ttl: float = 60.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._http = http
        self._own_http = http is None
        self._jwks_url = jwks_url
        self._leeway = leeway
        self._min_refresh = min_refresh_interval
        self._keys: dict[str, PyJWK] = {}
        self._jwks_fingerprint = ""
        self._cache: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        self._last_refresh = float("-inf")
        self._lock = asyncio.Lock()
        self.last_error: str | None = None  # why the last load of the keys failed

    @property
    def ready(self) -> bool:
        """True once a JWKS with at least one usable key is loaded."""
        return bool(self._keys)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    async def ensure_ready(self) -> bool:
        """Whether keys are loaded, trying to load them first if none are.

        The attempt is single-flight and rate-limited like every refresh, so a
        readiness probe (or any caller) may call this as often as it likes.
        """
        if not self._keys and self._http is not None:
            await self.refresh()
        return self.ready

    async def start(self) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        try:
            await self.refresh(force=True)
        except ServiceUnavailable as exc:
            log.warning("JWKS not loaded yet (will retry on demand): %s", exc.detail)

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def refresh(self, *, force: bool = False) -> None:
        """Reload the JWKS, single-flight and rate-limited unless ``force``.

        A failed load keeps the keys already held and is logged, not raised, unless
        ``force`` (start-up) asks for the error.
        """
        stamp = self._last_refresh
        async with self._lock:
            if self._last_refresh != stamp and not force:
                return  # someone refreshed while we waited
            # Without any key, retry soon; with keys, an unknown kid may not hammer the issuer.
            interval = self._min_refresh if self._keys else min(self._min_refresh, 1.0)
            if not force and time.monotonic() - self._last_refresh < interval:
                return
            self._last_refresh = time.monotonic()
            try:
                self._keys, fingerprint = await self._fetch_keys()
            except ServiceUnavailable as exc:
                self.last_error = exc.detail
                if force:
                    raise
                log.warning("JWKS refresh failed, keeping %d keys: %s", len(self._keys), exc)
                return
            self.last_error = None
            if fingerprint != self._jwks_fingerprint:
                self._jwks_fingerprint = fingerprint
                self._cache.clear()  # tokens of a removed key must not stay valid
            log.info("loaded %d signing keys from %s", len(self._keys), self.issuer)

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens are remembered now (at most ``cache_size``)."""
        return len(self._cache)

    async def verify(self, token: str) -> Principal:
        """Return the principal of a valid token or raise :class:`Unauthorized`.

        The principal's username becomes the user of the current request's access log line.
        """
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(digest)
        now = time.time()
        if cached is not None:
            if now < cached[1]:
                self._cache.move_to_end(digest)
                note_user(cached[0].username)
                return cached[0]
            del self._cache[digest]
        principal = await self._verify(token)
        note_user(principal.username)
        # Until exp (exact: past it, the full check applies again) and at most the TTL.
        self._cache[digest] = (principal, min(principal.expires_at, now + self._cache_ttl))
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        header = _header(token)
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS or not isinstance(kid, str):
            raise Unauthorized("token algorithm or key id not accepted")
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        self._check_audience(claims)
        if str(claims.get("typ", "Bearer")).lower() != "bearer":
            raise Unauthorized("not an access token")  # e.g. an ID token of the same client
        return Principal.from_claims(claims, self.audience)

    def _check_audience(self, claims: dict[str, Any]) -> None:
        aud = claims.get("aud")
        audiences = {aud} if isinstance(aud, str) else set(aud or [])
        if self.audience not in audiences and claims.get("azp") != self.audience:
            raise Unauthorized("token not issued for this audience")

    async def _key(self, kid: str) -> PyJWK:
        if kid not in self._keys:
            await self.refresh()
        if not self._keys:
            # Good tokens must not look forged while the issuer is unreachable.
            raise ServiceUnavailable("signing keys not loaded yet", retry_after=1)
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthorized("unknown signing key") from None

    async def _fetch_keys(self) -> tuple[dict[str, PyJWK], str]:
        """The usable keys by ``kid``, and a fingerprint of them to notice a change."""
        assert self._http is not None, "start() first"
        try:
            url = self._jwks_url or await self._discover()
            response = await self._http.get(url)
            response.raise_for_status()
            jwks = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"cannot load JWKS of {self.issuer}: {exc!r}") from None
        keys: dict[str, PyJWK] = {}
        used = []
        for data in jwks.get("keys", []):
            if data.get("use", "sig") != "sig" or data.get("alg", "RS256") not in ALGORITHMS:
                continue
            try:
                keys[data["kid"]] = PyJWK(data)
            except (jwt.PyJWTError, KeyError):
                log.warning("skipping unusable JWKS key %s", data.get("kid"))
            else:
                used.append(data)
        return keys, json.dumps(used, sort_keys=True)

    async def _discover(self) -> str:
        assert self._http is not None
        response = await self._http.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        self._jwks_url = str(response.json()["jwks_uri"])
        return self._jwks_url


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Unauthorized("malformed token") from None
    if not isinstance(header, dict):
        raise Unauthorized("malformed token")
    return header


def bearer_token(authorization: str | bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header value, else None."""
    if not authorization:
        return None
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


__all__ = ["ALGORITHMS", "JWTVerifier", "bearer_token"]
