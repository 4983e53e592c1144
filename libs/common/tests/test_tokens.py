"""JWTVerifier against the in-memory TestIssuer behind httpx's own fake transport (the
issuer is an outside boundary here; the auth service's tests cover the real embedded one)."""

import asyncio
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gatehouse.common.errors import ServiceUnavailable, Unauthorized
from gatehouse.common.tokens import JWTVerifier, bearer_token
from gatehouse.testing import TestIssuer

ISSUER = "http://issuer.test/realms/gatehouse"


def editor_issuer() -> TestIssuer:
    return TestIssuer(
        ISSUER,
        kid="k1",
        roles=["get-authors", "create-author"],
        sub="u1",
        preferred_username="editor",
    )


@pytest.fixture
async def issuer_and_verifier():
    issuer = editor_issuer()
    http = httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler))
    verifier = JWTVerifier(ISSUER, "gatehouse", http=http, min_refresh_interval=60)
    await verifier.start()
    yield issuer, verifier
    await http.aclose()


async def test_valid_token_gives_the_principal(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    principal = await verifier.verify(issuer.token())
    assert principal.username == "editor"
    assert principal.roles == {"get-authors", "create-author"}
    assert principal.has_any(["create-author"])
    assert not principal.has_any(["delete-author"])


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"iss": "http://evil.test/realms/gatehouse"}, "issuer"),
        ({"aud": "other", "azp": "other"}, "audience"),
        ({"nbf": int(time.time()) + 600}, "not yet valid"),
        ({"sub": None}, "sub"),
    ],
)
async def test_bad_claims_are_rejected(issuer_and_verifier, overrides, reason) -> None:
    issuer, verifier = issuer_and_verifier
    with pytest.raises(Unauthorized):
        await verifier.verify(issuer.token(**overrides))


async def test_alg_none_and_hmac_confusion_are_rejected(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    public_pem = issuer.public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    # HS/RS confusion: an HMAC "signed" with the public key must not verify.
    hmac_token = _hs256(claims, public_pem)
    for token in (unsigned, hmac_token, issuer.token()[:-4] + "AAAA", "not-a-jwt"):
        with pytest.raises(Unauthorized):
            await verifier.verify(token)


async def test_unknown_kid_refreshes_once_then_is_rate_limited(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    before = issuer.jwks_requests
    issuer.rotate_key("k2")  # key rotation at the issuer
    verifier._min_refresh = 0  # the first refresh after rotation must go through
    assert (await verifier.verify(issuer.token())).username == "editor"
    assert issuer.jwks_requests == before + 1
    verifier._min_refresh = 60
    forged = issuer.forged_token(kid="forged")  # a key the issuer never published
    for _ in range(20):
        with pytest.raises(Unauthorized, match="unknown signing key"):
            await verifier.verify(forged)
    assert issuer.jwks_requests == before + 1


def _hs256(claims: dict[str, Any], secret: bytes) -> str:
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = (
        b64(b'{"alg":"HS256","kid":"k1","typ":"JWT"}') + b"." + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token(b"bearer  abc") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


async def test_an_id_token_is_not_an_access_token(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    with pytest.raises(Unauthorized, match="not an access token"):
        await verifier.verify(issuer.token(typ="ID", aud="gatehouse"))


async def test_good_tokens_do_not_look_forged_while_the_issuer_is_down() -> None:
    issuer = editor_issuer()
    up = False

    def handler(request: httpx.Request) -> httpx.Response:
        return issuer.handler(request) if up else httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        verifier = JWTVerifier(ISSUER, "gatehouse", http=http, min_refresh_interval=0)
        await verifier.start()  # tolerated: the issuer may start after us
        assert not verifier.ready
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(issuer.token())
        up = True
        assert (await verifier.verify(issuer.token())).username == "editor"
        assert verifier.ready


async def test_a_verified_token_is_remembered(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    token = issuer.token()
    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert again is first  # served from the cache, not verified anew
    assert verifier.cached_tokens == 1


async def test_an_expired_token_is_refused_even_when_cached() -> None:
    issuer = editor_issuer()
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler)) as http:
        verifier = JWTVerifier(ISSUER, "gatehouse", http=http, leeway=0)
        await verifier.start()
        expires = int(time.time()) + 1
        token = issuer.token(exp=expires)
        assert (await verifier.verify(token)).username == "editor"  # cached until exp
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.01)  # let it expire (< 1 s)
        with pytest.raises(Unauthorized, match="expired"):
            await verifier.verify(token)


async def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    issuer = editor_issuer()
    async with httpx.AsyncClient(transport=httpx.MockTransport(issuer.handler)) as http:
        verifier = JWTVerifier(ISSUER, "gatehouse", http=http, cache_size=3)
        await verifier.start()
        tokens = [issuer.token(jti=f"t{i}") for i in range(5)]
        first = await verifier.verify(tokens[0])
        for token in tokens[1:3]:
            await verifier.verify(token)
        assert await verifier.verify(tokens[0]) is first  # used again: now the newest
        for token in tokens[3:]:
            await verifier.verify(token)
        assert verifier.cached_tokens == 3
        assert await verifier.verify(tokens[0]) is first  # survived two evictions


async def test_a_key_removed_at_the_issuer_is_not_honoured_from_the_cache(
    issuer_and_verifier,
) -> None:
    issuer, verifier = issuer_and_verifier
    old_token = issuer.token()
    await verifier.verify(old_token)  # cached
    issuer.rotate_key("k2")
    del issuer._keys["k1"]  # TestIssuer has no public way to withdraw a key
    verifier._min_refresh = 0
    await verifier.verify(issuer.token())  # unknown kid k2: the JWKS is reloaded
    with pytest.raises(Unauthorized, match="unknown signing key"):
        await verifier.verify(old_token)
