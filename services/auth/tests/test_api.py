"""The public /auth API on the embedded provider, in-process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from gatehouse.auth import AuthSettings, create_app
from gatehouse.auth.embedded.users import DEMO_ROLES, subject_for

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running

PROBLEM = "application/problem+json"
A, B = "203.0.113.5", "198.51.100.7"


async def login(client: httpx.AsyncClient, username: str = "editor") -> dict[str, str]:
    response = await client.post(
        "/auth/token", json={"username": username, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_login_answers_the_public_token_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", json={"username": "admin", "password": DEMO_PASSWORD}
    )
    assert set(response.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert response.json()["token_type"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


async def test_login_accepts_an_oauth2_password_form(client: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "username": "viewer", "password": DEMO_PASSWORD}
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 200
    assert response.json()["access_token"]


@pytest.mark.parametrize(("username", "roles"), list(DEMO_ROLES.items()))
async def test_me_tells_each_demo_user_their_roles(
    client: httpx.AsyncClient, username: str, roles: tuple[str, ...]
) -> None:
    me = (await client.get("/auth/me", headers=bearer(await login(client, username)))).json()
    assert me == {"sub": subject_for(username), "username": username, "roles": sorted(roles)}


async def test_bad_credentials_are_401_problem_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json={"username": "admin", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"] == "invalid username or password"


async def test_an_unknown_user_looks_like_a_wrong_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/token", json={"username": "ghost", "password": "x"})
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid username or password"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "admin"},
        {"username": "a" * 256, "password": "x"},
        {"username": "", "password": "x"},
    ],
)
async def test_missing_or_oversized_fields_are_422(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    response = await client.post("/auth/token", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_an_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token",
        content=b'{"username": "' + b"a" * 20_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def via(address: str) -> dict[str, str]:
    """Headers of a request that the gateway (a trusted proxy: loopback) forwarded."""
    return {"X-Forwarded-For": address}


async def test_failures_from_one_address_do_not_stop_the_owner_at_another(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        guess = {"username": "auditor", "password": "guess"}
        assert (await client.post("/auth/token", json=guess, headers=via(A))).status_code == 401
    right = {"username": "auditor", "password": DEMO_PASSWORD}
    throttled = await client.post("/auth/token", json=right, headers=via(A))
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == PROBLEM
    assert int(throttled.headers["retry-after"]) > 0
    owner = await client.post("/auth/token", json=right, headers=via(B))
    assert owner.status_code == 200


async def test_a_throttled_unknown_user_looks_like_a_throttled_real_one(
    client: httpx.AsyncClient,
) -> None:
    answers = {}
    for username in ("admin", "no-such-user"):
        for _ in range(5):
            await client.post("/auth/token", json={"username": username, "password": "x"})
        answers[username] = await client.post(
            "/auth/token", json={"username": username, "password": "x"}
        )
    real, unknown = answers["admin"], answers["no-such-user"]
    assert (real.status_code, real.json()) == (unknown.status_code, unknown.json())
    assert real.headers["retry-after"] == unknown.headers["retry-after"]


async def test_forwarded_addresses_of_an_untrusted_peer_are_ignored(settings: AuthSettings) -> None:
    app = create_app(settings, password_hasher=FAST_HASHER)
    async with running(app, client=("198.51.100.200", 4000)) as outsider:
        statuses = []
        for i in range(7):  # a new made-up address each time, from the same peer
            guess = {"username": "viewer", "password": "guess"}
            response = await outsider.post("/auth/token", json=guess, headers=via(f"10.9.9.{i}"))
            statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 2


async def test_concurrent_guesses_are_cut_off_at_the_limit(client: httpx.AsyncClient) -> None:
    guess = {"username": "admin", "password": "guess"}
    answers = await asyncio.gather(*(client.post("/auth/token", json=guess) for _ in range(20)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == 5
    assert statuses.count(429) == 15


async def refresh(client: httpx.AsyncClient, tokens: dict[str, str]) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})


async def test_refresh_rotates_and_reuse_revokes_the_session(client: httpx.AsyncClient) -> None:
    first = await login(client)
    second = await refresh(client, first)
    assert second.status_code == 200
    third = await refresh(client, second.json())
    assert third.status_code == 200
    # The first token again, after its successor was used: no retry, a stolen copy.
    reused = await client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert "session revoked" in reused.json()["detail"]
    latest = await refresh(client, third.json())
    assert latest.status_code == 401  # the thief's copy and the owner's copy are both dead
    me = await client.get("/auth/me", headers=bearer(third.json()))
    assert me.status_code == 401


async def test_a_retried_refresh_within_the_grace_window_gets_the_same_tokens(
    client: httpx.AsyncClient,
) -> None:
    first = await login(client)
    answered = await refresh(client, first)  # ... and the client never saw this answer
    retried = await refresh(client, first)
    assert retried.status_code == 200
    assert retried.json() == answered.json()
    assert retried.headers["cache-control"] == "no-store"
    me = await client.get("/auth/me", headers=bearer(retried.json()))
    assert me.status_code == 200
    assert (await refresh(client, retried.json())).status_code == 200  # the session lives on


async def test_a_retry_after_the_grace_window_revokes_the_session(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path, GATEHOUSE_AUTH_REFRESH_GRACE_SECONDS="0.3")
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        first = await login(client)
        second = await refresh(client, first)
        await asyncio.sleep(0.4)
        late = await refresh(client, first)
        assert late.status_code == 401
        assert "session revoked" in late.json()["detail"]
        assert (await refresh(client, second.json())).status_code == 401


async def test_logout_ends_the_session_and_is_idempotent(client: httpx.AsyncClient) -> None:
    tokens = await login(client)
    first = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    again = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert (first.status_code, again.status_code) == (204, 204)
    refresh = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer", "Basic YWRtaW46eA==", "Bearer not.a.jwt"])
async def test_me_without_a_valid_bearer_is_401(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await client.get("/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


async def test_probes_metrics_and_request_ids(client: httpx.AsyncClient) -> None:
    await login(client)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    metrics = (await client.get("/metrics")).text
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert set(ready.json()["checks"]) == {"jwks", "database", "schema"}
    assert 'service="auth",status="200"' in metrics
    assert 'route="/auth/token"' in metrics
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_openapi_documents_the_public_api_only(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    public = {"/auth/token", "/auth/refresh", "/auth/logout", "/auth/me"}
    assert public <= set(doc["paths"])
    # and the admin API; never the OIDC paths, /internal or the probes
    assert all(path in public or path.startswith("/auth/admin/") for path in doc["paths"])
    assert "Log in" in doc["paths"]["/auth/token"]["post"]["description"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


async def test_secrets_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = auth_settings(tmp_path, GATEHOUSE_DEMO_PASSWORD="")
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        password = (tmp_path / "demo-credentials").read_text().split()[-1]
        tokens = (
            await client.post("/auth/token", json={"username": "admin", "password": password})
        ).json()
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert caplog.records
    for secret in (password, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in caplog.text
