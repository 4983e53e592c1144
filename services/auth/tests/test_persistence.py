"""The auth app keeps its sessions and key in its database: restarts and replicas share them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatehouse.auth import AuthSettings, create_app
from gatehouse.common.errors import ConfigurationError
from gatehouse.testing import bind_loopback, serve

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running

CERTS = "/realms/gatehouse/protocol/openid-connect/certs"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def persistent_settings(request: pytest.FixtureRequest, tmp_path: Path) -> AuthSettings:
    """Embedded SQLite in the data folder, or ``GATEHOUSE_AUTH_DATABASE_URL`` on PostgreSQL."""
    if request.param == "sqlite":
        return auth_settings(tmp_path)
    url = str(request.getfixturevalue("postgres_url"))
    return auth_settings(tmp_path, GATEHOUSE_AUTH_DATABASE_URL=url)


@contextlib.asynccontextmanager
async def served(settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The auth app on a real loopback port, as ``gatehouse run auth`` runs it."""
    async with (
        serve(create_app(settings, password_hasher=FAST_HASHER), sock=bind_loopback()) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


async def login(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(
        "/auth/token", json={"username": "editor", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_a_restart_keeps_sessions_and_the_key(persistent_settings: AuthSettings) -> None:
    async with served(persistent_settings) as before:
        tokens = await login(before)
        keys_before = (await before.get(CERTS)).json()
    async with served(persistent_settings) as after:
        refreshed = await refresh(after, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        assert (await after.get("/auth/me", headers=bearer)).json()["username"] == "editor"
        assert (await after.get(CERTS)).json() == keys_before


async def test_two_replicas_share_sessions_and_reuse_detection(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = [
        auth_settings(tmp_path / name, GATEHOUSE_AUTH_DATABASE_URL=postgres_url)
        for name in ("one", "two")
    ]
    async with served(settings[0]) as one, served(settings[1]) as two:
        assert (await one.get(CERTS)).json() == (await two.get(CERTS)).json()
        first = await login(one)
        second = await refresh(two, first["refresh_token"])
        assert second.status_code == 200
        retried = await refresh(one, first["refresh_token"])  # a retry, to the other replica
        assert retried.json() == second.json()
        third = await refresh(one, second.json()["refresh_token"])
        assert third.status_code == 200
        reused = await refresh(two, first["refresh_token"])
        assert reused.status_code == 401
        assert "session revoked" in reused.json()["detail"]
        assert (await refresh(two, third.json()["refresh_token"])).status_code == 401


async def test_two_replicas_count_failed_logins_together(postgres_url: str, tmp_path: Path) -> None:
    settings = [
        auth_settings(tmp_path / name, GATEHOUSE_AUTH_DATABASE_URL=postgres_url)
        for name in ("one", "two")
    ]
    guesser, owner = {"X-Forwarded-For": "203.0.113.9"}, {"X-Forwarded-For": "198.51.100.3"}
    guess = {"username": "auditor", "password": "guess"}
    right = {"username": "auditor", "password": DEMO_PASSWORD}
    async with served(settings[0]) as one, served(settings[1]) as two:
        for replica in (one, two, one, two, one):  # 5 failures, split over the replicas
            assert (await replica.post("/auth/token", json=guess, headers=guesser)).status_code == (
                401
            )
        for replica in (one, two):
            throttled = await replica.post("/auth/token", json=right, headers=guesser)
            assert throttled.status_code == 429
        assert (await two.post("/auth/token", json=right, headers=owner)).status_code == 200


async def test_an_unreachable_database_stops_start_up_naming_the_variable(
    tmp_path: Path,
) -> None:
    refused = bind_loopback()  # bound, never listening
    port = refused.getsockname()[1]
    url = f"postgresql://gatehouse:s3cret-pw@127.0.0.1:{port}/auth"
    settings = auth_settings(tmp_path, GATEHOUSE_AUTH_DATABASE_URL=url)
    with pytest.raises(ConfigurationError) as caught:
        async with running(create_app(settings, password_hasher=FAST_HASHER)):
            pass
    refused.close()
    assert caught.value.setting == "GATEHOUSE_AUTH_DATABASE_URL"
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


async def test_keycloak_mode_needs_no_database(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, KEYCLOAK_URL="http://127.0.0.1:9")
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        assert "database" not in (await client.get("/readyz")).json()["checks"]
    assert not (tmp_path / "auth.db").exists()


async def test_the_private_key_never_reaches_the_logs(
    persistent_settings: AuthSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(create_app(persistent_settings, password_hasher=FAST_HASHER)) as client:
        await login(client)
    assert caplog.records
    assert "PRIVATE KEY" not in caplog.text


async def test_a_data_folder_that_cannot_be_created_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    settings = auth_settings(tmp_path / "file" / "data")
    with pytest.raises(ConfigurationError) as caught:
        async with running(create_app(settings, password_hasher=FAST_HASHER)):
            pass
    assert caught.value.setting == "GATEHOUSE_DATA_DIR"
