"""JWTVerifier against a JWKS served over httpx's own fake transport (the issuer is
an outside boundary here; the auth service's tests cover the real embedded issuer)."""

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm

from gatehouse.common.errors import ServiceUnavailable, Unauthorized
from gatehouse.common.tokens import JWTVerifier, bearer_token

ISSUER = "http://issuer.test/realms/gatehouse"


class Issuer:
    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_requests = 0
        self.add_key("k1")

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
        self.jwks_requests += 1
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return httpx.Response(200, json={"keys": keys})

    def token(self, kid: str = "k1", **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "u1",
            "aud": ["gatehouse", "account"],
            "azp": "gatehouse",
            "iat": now,
            "exp": now + 300,
            "preferred_username": "editor",
            "realm_access": {"roles": ["get-authors", "create-author"]},
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def issuer_and_verifier():
    issuer = Issuer()
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
    public_pem = (
        issuer.keys["k1"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    # HS/RS confusion: an HMAC "signed" with the public key must not verify.
    hmac_token = _hs256(claims, public_pem)
    for token in (unsigned, hmac_token, issuer.token()[:-4] + "AAAA", "not-a-jwt"):
        with pytest.raises(Unauthorized):
            await verifier.verify(token)


async def test_unknown_kid_refreshes_once_then_is_rate_limited(issuer_and_verifier) -> None:
    issuer, verifier = issuer_and_verifier
    before = issuer.jwks_requests
    issuer.add_key("k2")  # key rotation at the issuer
    verifier._min_refresh = 0  # the first refresh after rotation must go through
    assert (await verifier.verify(issuer.token("k2"))).username == "editor"
    assert issuer.jwks_requests == before + 1
    verifier._min_refresh = 60
    issuer.add_key("forged")
    forged = issuer.token("forged")
    del issuer.keys["forged"]  # a key the issuer never published
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
    issuer = Issuer()
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
