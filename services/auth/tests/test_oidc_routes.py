"""The embedded issuer at Keycloak's paths, in-process."""

from __future__ import annotations

import httpx

from gatehouse.auth.embedded.users import subject_for
from gatehouse.common.identity import ALL_ROLES

from .conftest import DEMO_PASSWORD

OIDC = "/realms/gatehouse/protocol/openid-connect"


async def password_grant(client: httpx.AsyncClient, username: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "password", "client_id": "gatehouse", "username": username}
    return await client.post(f"{OIDC}/token", data={"password": DEMO_PASSWORD, **form, **extra})


# OpenID Connect Discovery 1.0 §3: REQUIRED provider metadata.
DISCOVERY_REQUIRED = {
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
}


async def test_discovery_points_at_this_issuer(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/realms/gatehouse/.well-known/openid-configuration")).json()
    assert doc.keys() >= DISCOVERY_REQUIRED
    assert doc["issuer"] == "http://127.0.0.1:8003/realms/gatehouse"
    assert doc["authorization_endpoint"] == f"{doc['issuer']}/protocol/openid-connect/auth"
    assert doc["jwks_uri"] == f"{doc['issuer']}/protocol/openid-connect/certs"
    assert doc["token_endpoint"].endswith("/protocol/openid-connect/token")


async def test_certs_list_the_signing_key(client: httpx.AsyncClient) -> None:
    keys = (await client.get(f"{OIDC}/certs")).json()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]


async def test_an_unknown_realm_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/realms/master/.well-known/openid-configuration")
    assert response.status_code == 404


async def test_a_password_grant_answers_like_keycloak(client: httpx.AsyncClient) -> None:
    response = await password_grant(client, "admin", scope="openid")
    body = response.json()
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_expires_in"] == 1800
    assert body["not-before-policy"] == 0
    assert body["session_state"]
    assert body["id_token"]
    assert body["scope"] == "openid profile email"


async def test_access_tokens_carry_the_contract_claims(client: httpx.AsyncClient) -> None:
    token = (await password_grant(client, "admin")).json()["access_token"]
    response = await client.post(
        f"{OIDC}/token/introspect", data={"client_id": "gatehouse", "token": token}
    )
    claims = response.json()
    assert claims["active"] is True
    assert claims["sub"] == subject_for("admin")
    assert claims["aud"] == ["gatehouse", "account"]
    assert (claims["azp"], claims["typ"], claims["preferred_username"]) == (
        "gatehouse",
        "Bearer",
        "admin",
    )
    assert sorted(claims["realm_access"]["roles"]) == sorted(ALL_ROLES)
    assert {"exp", "iat", "jti", "iss", "scope"} <= claims.keys()


async def test_wrong_password_is_invalid_grant_401(client: httpx.AsyncClient) -> None:
    response = await password_grant(client, "admin", password="wrong password")
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid user credentials",
    }


async def test_an_unknown_client_is_invalid_client_401(client: httpx.AsyncClient) -> None:
    response = await password_grant(client, "admin", client_id="intruder")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_an_unsupported_grant_or_missing_field_is_400(client: httpx.AsyncClient) -> None:
    grant = await client.post(
        f"{OIDC}/token", data={"grant_type": "authorization_code", "client_id": "gatehouse"}
    )
    missing = await client.post(f"{OIDC}/token", data={"client_id": "gatehouse"})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


async def test_a_public_client_has_no_service_account(client: httpx.AsyncClient) -> None:
    grant = await client.post(
        f"{OIDC}/token", data={"grant_type": "client_credentials", "client_id": "gatehouse"}
    )
    assert (grant.status_code, grant.json()["error"]) == (400, "unauthorized_client")


async def test_userinfo_refuses_a_token_without_the_openid_scope(
    client: httpx.AsyncClient,
) -> None:
    tokens = (await password_grant(client, "viewer")).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    response = await client.get(f"{OIDC}/userinfo", headers=bearer)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_the_authorization_endpoint_serves_no_browser_flow(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/realms/gatehouse/.well-known/openid-configuration")).json()
    query = {"response_type": "code", "redirect_uri": "https://evil.example/"}
    response = await client.get(doc["authorization_endpoint"], params=query)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_response_type"
    assert "location" not in response.headers


async def test_userinfo_until_logout(client: httpx.AsyncClient) -> None:
    tokens = (await password_grant(client, "viewer", scope="openid")).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    info = (await client.get(f"{OIDC}/userinfo", headers=bearer)).json()
    assert info["sub"] == subject_for("viewer")
    assert info["preferred_username"] == "viewer"

    logout = await client.post(
        f"{OIDC}/logout", data={"client_id": "gatehouse", "refresh_token": tokens["refresh_token"]}
    )
    after = await client.get(f"{OIDC}/userinfo", headers=bearer)
    assert logout.status_code == 204
    assert after.status_code == 401
    assert after.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in after.headers["www-authenticate"]


async def test_a_rotated_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    first = (await password_grant(client, "editor")).json()["refresh_token"]
    refresh = {"grant_type": "refresh_token", "client_id": "gatehouse"}
    second = await client.post(f"{OIDC}/token", data={**refresh, "refresh_token": first})
    retried = await client.post(f"{OIDC}/token", data={**refresh, "refresh_token": first})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first
    assert retried.json() == second.json()  # a retry within the grace window
    third = {**refresh, "refresh_token": second.json()["refresh_token"]}
    assert (await client.post(f"{OIDC}/token", data=third)).status_code == 200
    reused = await client.post(f"{OIDC}/token", data={**refresh, "refresh_token": first})
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_introspecting_garbage_is_inactive(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{OIDC}/token/introspect", data={"client_id": "gatehouse", "token": "not-a-token"}
    )
    assert response.json() == {"active": False}
