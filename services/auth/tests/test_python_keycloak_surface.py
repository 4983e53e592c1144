"""python-keycloak's ``KeycloakOpenID``, the whole surface that applies to the password,
refresh and client-credentials grants, against the embedded issuer over real HTTP.

The issuer runs with a client secret, as a confidential client in Keycloak does: the
client-credentials grant needs one. The methods that do not apply (authorization code,
device, token exchange, UMA, entitlement, client registration) are left out.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from jwcrypto import jwk
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakGetError

from gatehouse.auth import create_app
from gatehouse.auth.embedded.users import subject_for
from gatehouse.testing import bind_loopback, serve

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings

SECRET = "a client secret of the surface test"


@pytest.fixture
async def confidential_url(tmp_path: Path) -> AsyncIterator[str]:
    sock = bind_loopback()
    settings = auth_settings(
        tmp_path,
        GATEHOUSE_AUTH_PORT=sock.getsockname()[1],
        GATEHOUSE_AUTH_CLIENT_SECRET=SECRET,
    )
    async with serve(create_app(settings, password_hasher=FAST_HASHER), sock=sock) as url:
        yield url


@pytest.fixture
async def openid(confidential_url: str) -> AsyncIterator[KeycloakOpenID]:
    client = KeycloakOpenID(
        server_url=confidential_url,
        realm_name="gatehouse",
        client_id="gatehouse",
        client_secret_key=SECRET,
    )
    yield client
    await client.connection.aclose()


async def test_public_key_is_the_signing_key_of_the_jwks(openid: KeycloakOpenID) -> None:
    der = base64.b64decode(await openid.a_public_key())
    public = load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    (published,) = (await openid.a_certs())["keys"]
    assert jwk.JWK(**published).export_to_pem() == jwk.JWK.from_pyca(public).export_to_pem()


async def test_auth_url_comes_from_discovery(openid: KeycloakOpenID) -> None:
    url = await openid.a_auth_url("https://app.example/cb", scope="openid", state="s1")
    parts = urlsplit(url)
    assert parts.path == "/realms/gatehouse/protocol/openid-connect/auth"
    assert parse_qs(parts.query)["client_id"] == ["gatehouse"]


async def test_password_grant_then_every_token_method(openid: KeycloakOpenID) -> None:
    tokens = await openid.a_token("editor", DEMO_PASSWORD)
    claims = await openid.a_decode_token(tokens["access_token"])
    assert (claims["preferred_username"], claims["sub"]) == ("editor", subject_for("editor"))
    id_claims = await openid.a_decode_token(tokens["id_token"])
    assert id_claims["typ"] == "ID"
    assert (await openid.a_userinfo(tokens["access_token"]))["preferred_username"] == "editor"
    assert (await openid.a_introspect(tokens["access_token"]))["active"] is True
    assert (await openid.a_introspect(tokens["refresh_token"]))["token_type"] == "Refresh"

    rotated = await openid.a_refresh_token(tokens["refresh_token"])
    assert (await openid.a_decode_token(rotated["access_token"]))["sid"] == claims["sid"]
    assert await openid.a_logout(rotated["refresh_token"]) == {}
    assert (await openid.a_introspect(rotated["access_token"]))["active"] is False


async def test_userinfo_needs_the_openid_scope(openid: KeycloakOpenID) -> None:
    tokens = await openid.a_token("viewer", DEMO_PASSWORD, scope="profile")
    assert "id_token" not in tokens
    with pytest.raises(KeycloakGetError) as caught:
        await openid.a_userinfo(tokens["access_token"])
    assert caught.value.response_code == 403


async def test_client_credentials_grant(openid: KeycloakOpenID) -> None:
    tokens = await openid.a_token(grant_type="client_credentials")
    assert "refresh_token" not in tokens
    claims = await openid.a_decode_token(tokens["access_token"])
    assert claims["preferred_username"] == "service-account-gatehouse"
    assert claims["azp"] == "gatehouse"
    assert "sid" not in claims
    info = await openid.a_userinfo(tokens["access_token"])
    assert info["sub"] == claims["sub"]
    introspected = await openid.a_introspect(tokens["access_token"])
    assert (introspected["active"], introspected["client_id"]) == (True, "gatehouse")


async def test_client_credentials_with_a_wrong_secret_is_401(confidential_url: str) -> None:
    client = KeycloakOpenID(
        server_url=confidential_url,
        realm_name="gatehouse",
        client_id="gatehouse",
        client_secret_key="not the secret",
    )
    try:
        with pytest.raises(KeycloakAuthenticationError) as caught:
            await client.a_token(grant_type="client_credentials")
    finally:
        await client.connection.aclose()
    assert caught.value.response_code == 401


async def test_the_synchronous_api_too(openid: KeycloakOpenID) -> None:
    def flow() -> None:
        assert openid.well_known()["authorization_endpoint"]
        assert openid.public_key()
        tokens = openid.token("auditor", DEMO_PASSWORD)
        assert openid.decode_token(tokens["access_token"])["preferred_username"] == "auditor"
        assert openid.userinfo(tokens["access_token"])["preferred_username"] == "auditor"
        assert openid.introspect(tokens["access_token"])["active"] is True
        refreshed = openid.refresh_token(tokens["refresh_token"])
        assert openid.logout(refreshed["refresh_token"]) == {}
        assert "access_token" in openid.token(grant_type="client_credentials")

    await asyncio.to_thread(flow)


async def test_tokens_of_both_keys_decode_through_a_rotation(
    openid: KeycloakOpenID, confidential_url: str
) -> None:
    before = await openid.a_token("admin", DEMO_PASSWORD)
    async with httpx.AsyncClient(base_url=confidential_url) as http:
        rotated = await http.post(
            "/auth/admin/keys/rotate",
            json={"activate_in": 0},
            headers={"Authorization": f"Bearer {before['access_token']}"},
        )
    assert rotated.status_code == 201
    after = await openid.a_token("admin", DEMO_PASSWORD)
    assert len((await openid.a_certs())["keys"]) == 2
    for tokens in (before, after):  # python-keycloak picks the key by kid from the JWKS
        assert (await openid.a_decode_token(tokens["access_token"]))[
            "preferred_username"
        ] == "admin"
        assert (await openid.a_userinfo(tokens["access_token"]))["preferred_username"] == "admin"
    public = load_der_public_key(base64.b64decode(await openid.a_public_key()))
    assert isinstance(public, rsa.RSAPublicKey)
    signer = jwk.JWK.from_pyca(public).thumbprint()
    assert signer == rotated.json()["kid"]  # the realm page shows the key that signs now
