"""python-keycloak and the shared JWT verifier against the embedded issuer over real HTTP.

This is what proves the embedded issuer is Keycloak-compatible: the very client the
Keycloak provider uses in production logs in, refreshes, reads userinfo and logs out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from gatehouse.auth import KeycloakProvider, create_app
from gatehouse.auth.embedded.users import subject_for
from gatehouse.common.errors import ServiceUnavailable, TooManyRequests, Unauthorized
from gatehouse.common.identity import GET_AUTHORS
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import bind_loopback

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running


@pytest.fixture
async def openid(issuer_url: str) -> AsyncIterator[KeycloakOpenID]:
    client = KeycloakOpenID(server_url=issuer_url, realm_name="gatehouse", client_id="gatehouse")
    yield client
    await client.connection.aclose()


@pytest.fixture
async def provider(issuer_url: str) -> AsyncIterator[KeycloakProvider]:
    provider = KeycloakProvider(issuer_url, "gatehouse", "gatehouse")
    await provider.start()
    yield provider
    await provider.close()


async def test_python_keycloak_logs_in_and_reads_userinfo(openid: KeycloakOpenID) -> None:
    assert (await openid.a_well_known())["issuer"].endswith("/realms/gatehouse")
    tokens = await openid.a_token("viewer", DEMO_PASSWORD)
    info = await openid.a_userinfo(tokens["access_token"])
    assert isinstance(info, dict)
    assert info["preferred_username"] == "viewer"
    assert info["sub"] == subject_for("viewer")
    introspected = await openid.a_introspect(tokens["access_token"])
    assert introspected["active"] is True


async def test_python_keycloak_sees_bad_credentials_as_401(openid: KeycloakOpenID) -> None:
    with pytest.raises(KeycloakAuthenticationError) as caught:
        await openid.a_token("viewer", "wrong password")
    assert caught.value.response_code == 401


async def test_python_keycloak_sees_a_throttled_login_as_429(openid: KeycloakOpenID) -> None:
    for _ in range(5):
        with pytest.raises(KeycloakAuthenticationError):
            await openid.a_token("nobody", "wrong password")
    with pytest.raises(KeycloakPostError) as caught:
        await openid.a_token("nobody", DEMO_PASSWORD)
    assert caught.value.response_code == 429
    assert json.loads(caught.value.response_body or b"{}")["error"] == "invalid_grant"


async def test_the_keycloak_provider_maps_a_throttled_login_to_429(
    provider: KeycloakProvider,
) -> None:
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await provider.login("nobody", "wrong password")
    with pytest.raises(TooManyRequests) as caught:
        await provider.login("nobody", DEMO_PASSWORD)
    assert int(caught.value.headers["Retry-After"]) > 0


async def test_python_keycloak_refresh_rotation_and_reuse(openid: KeycloakOpenID) -> None:
    first = await openid.a_token("editor", DEMO_PASSWORD)
    second = await openid.a_refresh_token(first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert await openid.a_refresh_token(first["refresh_token"]) == second  # a retry: grace
    third = await openid.a_refresh_token(second["refresh_token"])
    with pytest.raises(KeycloakPostError) as caught:
        await openid.a_refresh_token(first["refresh_token"])
    assert caught.value.response_code == 400
    with pytest.raises(KeycloakPostError):  # reuse revoked the whole session
        await openid.a_refresh_token(third["refresh_token"])


async def test_python_keycloak_logout_revokes(openid: KeycloakOpenID) -> None:
    tokens = await openid.a_token("auditor", DEMO_PASSWORD)
    assert await openid.a_logout(tokens["refresh_token"]) == {}
    with pytest.raises(KeycloakPostError):
        await openid.a_refresh_token(tokens["refresh_token"])


async def test_tokens_verify_with_the_shared_verifier(
    issuer_url: str, openid: KeycloakOpenID
) -> None:
    tokens = await openid.a_token("viewer", DEMO_PASSWORD)
    verifier = JWTVerifier(f"{issuer_url}/realms/gatehouse", "gatehouse")
    await verifier.start()
    try:
        principal = await verifier.verify(tokens["access_token"])
    finally:
        await verifier.close()
    assert principal.username == "viewer"
    assert principal.roles == {GET_AUTHORS}


async def test_keycloak_provider_round_trip(provider: KeycloakProvider) -> None:
    assert await provider.ready()
    tokens = await provider.login("admin", DEMO_PASSWORD)
    info = await provider.userinfo(tokens.access_token)
    assert (info.subject, info.username) == (subject_for("admin"), "admin")
    assert "admin" in info.roles

    rotated = await provider.refresh(tokens.refresh_token)
    assert await provider.refresh(tokens.refresh_token) == rotated  # a retry: grace
    latest = await provider.refresh(rotated.refresh_token)
    with pytest.raises(Unauthorized):
        await provider.refresh(tokens.refresh_token)  # reuse detected
    with pytest.raises(Unauthorized):
        await provider.refresh(latest.refresh_token)  # ... and the session is gone


async def test_keycloak_provider_bad_password_and_logout(provider: KeycloakProvider) -> None:
    with pytest.raises(Unauthorized):
        await provider.login("admin", "wrong password")
    tokens = await provider.login("editor", DEMO_PASSWORD)
    await provider.logout(tokens.refresh_token)
    await provider.logout(tokens.refresh_token)  # twice is fine
    with pytest.raises(Unauthorized):
        await provider.refresh(tokens.refresh_token)


async def test_keycloak_provider_reports_an_unreachable_keycloak() -> None:
    sock = bind_loopback()  # bound, never listening: connections are refused
    url = "http://{}:{}".format(*sock.getsockname())
    provider = KeycloakProvider(url, "gatehouse", "gatehouse")
    await provider.start()
    try:
        assert not await provider.ready()
        with pytest.raises(ServiceUnavailable):
            await provider.login("admin", DEMO_PASSWORD)
    finally:
        await provider.close()
        sock.close()


async def test_the_public_api_in_keycloak_mode(issuer_url: str, tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "kc-mode", KEYCLOAK_URL=issuer_url)
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        login = await client.post(
            "/auth/token", json={"username": "editor", "password": DEMO_PASSWORD}
        )
        assert login.status_code == 200
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        me = (await client.get("/auth/me", headers=bearer)).json()
        assert me["username"] == "editor"
        assert "create-author" in me["roles"]
        bad = await client.post("/auth/token", json={"username": "editor", "password": "x"})
        assert bad.status_code == 401
        realm = await client.get("/realms/gatehouse/.well-known/openid-configuration")
        assert realm.status_code == 404  # Keycloak mode serves no embedded issuer
    assert not (tmp_path / "kc-mode").exists()  # nor writes its key or demo password


async def test_a_restarted_issuer_keeps_tokens_verifiable(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path)
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as first:
        response = await first.post(
            "/auth/token", json={"username": "viewer", "password": DEMO_PASSWORD}
        )
        token = response.json()["access_token"]
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as restarted:
        certs = "/realms/gatehouse/protocol/openid-connect/certs"
        verifier = JWTVerifier(settings.issuer(), "gatehouse", http=restarted, jwks_url=certs)
        await verifier.start()
        assert (await verifier.verify(token)).username == "viewer"
