"""POST /auth/admin/keys/rotate: admin only, audited, and tokens of both keys keep working."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import jwt
import pytest

from gatehouse.auth import create_app

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running

ROTATE = "/auth/admin/keys/rotate"
CERTS = "/realms/gatehouse/protocol/openid-connect/certs"


async def token(client: httpx.AsyncClient, username: str) -> str:
    response = await client.post(
        "/auth/token", json={"username": username, "password": DEMO_PASSWORD}
    )
    return str(response.json()["access_token"])


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def test_only_an_admin_rotates(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gatehouse.auth.audit")
    anonymous = await client.post(ROTATE)
    viewer = await client.post(ROTATE, headers=bearer(await token(client, "viewer")))
    assert (anonymous.status_code, viewer.status_code) == (401, 403)
    assert viewer.headers["content-type"].startswith("application/problem+json")
    (denied,) = [r for r in caplog.records if r.name == "gatehouse.auth.audit"]
    assert denied.fields["user"] == "viewer"  # type: ignore[attr-defined]
    assert denied.fields["outcome"] == "denied"  # type: ignore[attr-defined]
    assert len((await client.get(CERTS)).json()["keys"]) == 1


async def test_a_rotation_publishes_the_new_key_and_keeps_the_old(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "gatehouse.auth.audit")
    admin = await token(client, "admin")
    old_kid = jwt.get_unverified_header(admin)["kid"]
    rotated = await client.post(ROTATE, json={"activate_in": 0}, headers=bearer(admin))
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    assert body["published"] == [old_kid, body["kid"]]
    assert [k["kid"] for k in (await client.get(CERTS)).json()["keys"]] == body["published"]

    fresh = await token(client, "viewer")
    assert jwt.get_unverified_header(fresh)["kid"] == body["kid"]
    for access in (admin, fresh):  # signed by the old key and by the new one
        assert (await client.get("/auth/me", headers=bearer(access))).status_code == 200
    success = [r for r in caplog.records if getattr(r, "fields", {}).get("outcome") == "success"]
    assert [r.fields["detail"] for r in success] == [body["kid"]]  # type: ignore[attr-defined]

    again = await client.post(ROTATE, headers=bearer(admin))
    assert again.status_code == 409  # one rotation a minute at most


async def test_with_keycloak_there_is_no_key_to_rotate(issuer_url: str, tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "kc-mode", KEYCLOAK_URL=issuer_url)
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        admin = await token(client, "admin")
        response = await client.post(ROTATE, headers=bearer(admin))
    assert response.status_code == 404


@pytest.mark.parametrize("activate_in", [-1, False, "5"])  # schemathesis: false was 0 s
async def test_an_activation_out_of_range_is_422(
    client: httpx.AsyncClient, activate_in: object
) -> None:
    admin = bearer(await token(client, "admin"))
    response = await client.post(ROTATE, json={"activate_in": activate_in}, headers=admin)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert len((await client.get(CERTS)).json()["keys"]) == 1
