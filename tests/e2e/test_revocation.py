"""Revocation at the edge (issue #5) and the admin API through the gateway (issue #11):
the gateway refuses a logged-out access token, and a disabled user's, within seconds,
though the token itself stays valid until it expires. Real processes: the auth
service, the authors service and the gateway, each its own ``gatehouse run``; the gateway
learns of revocations only by polling the auth service's ``/internal/revocations``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gatehouse.gateway.config import load_config

from .conftest import DEMO_PASSWORD, Processes, free_port, login, wait_ready

pytestmark = pytest.mark.e2e

# The gateway polls every 2 s (gateway.yaml: revocation_poll); "within seconds" with room
# for a loaded 2-core machine.
REFUSED_WITHIN = 15.0
REVOKED = "the token's session was revoked"  # the gateway's own 401, not an upstream's


@dataclass(frozen=True)
class Split:
    gateway: str
    auth: str
    processes: Processes


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    """auth, authors and the gateway as three processes (embedded profile, own data)."""
    folder = tmp_path_factory.mktemp("revocation")
    ports = {name: free_port() for name in ("auth", "authors", "gateway", "admin")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    common: dict[str, str | None] = {
        "GATEHOUSE_PROFILE": "embedded",
        "GATEHOUSE_DEMO_PASSWORD": DEMO_PASSWORD,
        "OIDC_ISSUER": f"{urls['auth']}/realms/gatehouse",
        **dict.fromkeys(("DATABASE_URL", "REDIS_URL", "AMQP_URL", "KEYCLOAK_URL")),
    }
    processes = Processes(folder)
    try:
        for name in ("auth", "authors"):
            env = {
                **common,
                f"GATEHOUSE_{name.upper()}_PORT": str(ports[name]),
                "GATEHOUSE_DATA_DIR": str(folder / name),
            }
            processes.run(["migrate", name], env)  # `run authors` alone never migrates
            processes.start(name, ["run", name], env)
        processes.start(
            "gateway",
            ["run", "gateway"],
            {
                **common,
                "GATEHOUSE_GATEWAY_PORT": str(ports["gateway"]),
                "GATEHOUSE_ADMIN_PORT": str(ports["admin"]),
                "GATEHOUSE_DATA_DIR": str(folder / "gateway"),
                "GATEHOUSE_UPSTREAM_AUTH_URL": urls["auth"],
                "GATEHOUSE_UPSTREAM_AUTHORS_URL": urls["authors"],
            },
        )
        for name in ("auth", "authors"):
            asyncio.run(wait_ready(processes, f"{urls[name]}/readyz"))
        asyncio.run(wait_ready(processes, f"{urls['gateway']}/healthz"))
        yield Split(urls["gateway"], urls["auth"], processes)
        processes.assert_alive()
    finally:
        processes.stop_all()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def refused_by_the_gateway(client: httpx.AsyncClient, token: str) -> float:
    """Seconds until the gateway answers its own 401 for ``token`` on a route the
    authors service would serve (it does not know of revocations)."""
    start = time.monotonic()
    while time.monotonic() - start < REFUSED_WITHIN:
        response = await client.get("/api/v1/authors", headers=bearer(token))
        if response.status_code == 401:
            assert response.json()["detail"] == REVOKED, response.text
            return time.monotonic() - start
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.2)
    pytest.fail(f"the gateway still accepts the token after {REFUSED_WITHIN} s")


async def test_a_logged_out_access_token_is_refused_by_the_gateway_within_seconds(
    split: Split,
) -> None:
    async with httpx.AsyncClient(base_url=split.gateway, timeout=10) as client:
        response = await client.post(
            "/auth/token", json={"username": "viewer", "password": DEMO_PASSWORD}
        )
        tokens = response.json()
        other = await login(client, "viewer")  # another session of the same user
        access = tokens["access_token"]
        assert (await client.get("/api/v1/authors", headers=bearer(access))).status_code == 200
        logout = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert logout.status_code == 204
        await refused_by_the_gateway(client, access)
        kept = await client.get("/api/v1/authors", headers=bearer(other))
        assert kept.status_code == 200, "a logout ended another session of the user"


async def test_the_gateway_does_not_route_the_internal_revocation_list(split: Split) -> None:
    async with httpx.AsyncClient(base_url=split.gateway, timeout=10) as client:
        token = await login(client, "admin")
        for path in ("/internal/revocations", "/internal", "/internal/../internal/revocations"):
            for headers in ({}, bearer(token)):
                response = await client.get(path, headers=headers)
                assert response.status_code in (400, 404), (path, response.status_code)
                assert "items" not in response.text
    async with httpx.AsyncClient(base_url=split.auth, timeout=10) as direct:
        assert (await direct.get("/internal/revocations")).status_code == 200


SHIPPED_CONFIGS = {
    "gateway.yaml": None,  # the packaged file
    "deploy/k8s": Path(__file__).parents[2] / "deploy/k8s/base/gateway-config.yaml",
}


@pytest.mark.parametrize("name", list(SHIPPED_CONFIGS))
def test_no_shipped_gateway_route_reaches_internal_paths(name: str) -> None:
    config = load_config(SHIPPED_CONFIGS[name])
    for path in ("/internal/revocations", "/internal", "/internal/x"):
        assert not [r.prefix for r in config.routes if r.matches(path)], path


# The admin API through the gateway (issue #11): every route as every demo identity.
ADMIN_ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/auth/admin/users", None),
    ("POST", "/auth/admin/users", {"username": "matrix", "password": DEMO_PASSWORD}),
    ("GET", "/auth/admin/users/viewer", None),
    ("PATCH", "/auth/admin/users/viewer", {"enabled": True}),
    ("PUT", "/auth/admin/users/viewer/roles/get-authors", None),
    ("DELETE", "/auth/admin/users/matrix/roles/get-authors", None),
    ("GET", "/auth/admin/audit", None),
    ("POST", "/auth/admin/keys/rotate", {}),
]
# admin: done, or refused by auth for the state of things (the role not held; a key
# rotated less than a minute ago).
ADMIN_MAY = {200, 201, 404, 409}


@pytest.mark.parametrize(
    "identity", ["admin", "editor", "viewer", "auditor", "nobody", "anonymous"]
)
async def test_only_admins_pass_the_gateway_to_the_admin_api(split: Split, identity: str) -> None:
    async with httpx.AsyncClient(base_url=split.gateway, timeout=10) as client:
        headers = {} if identity == "anonymous" else bearer(await login(client, identity))
        for method, path, body in ADMIN_ROUTES:
            response = await client.request(method, path, json=body, headers=headers)
            status = response.status_code
            if identity == "admin":
                assert status in ADMIN_MAY, (method, path, response.text)
            else:
                assert status == (401 if identity == "anonymous" else 403), (method, path, status)
                assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_disabled_users_token_is_refused_by_the_gateway_within_seconds(
    split: Split,
) -> None:
    async with httpx.AsyncClient(base_url=split.gateway, timeout=10) as client:
        admin = bearer(await login(client, "admin"))
        body = {"username": "dora", "password": DEMO_PASSWORD, "roles": ["get-authors"]}
        created = await client.post("/auth/admin/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        token = await login(client, "dora")
        assert (await client.get("/api/v1/authors", headers=bearer(token))).status_code == 200
        disabled = await client.patch(
            "/auth/admin/users/dora", json={"enabled": False}, headers=admin
        )
        assert disabled.status_code == 200, disabled.text
        await refused_by_the_gateway(client, token)
        again = await client.post(
            "/auth/token", json={"username": "dora", "password": DEMO_PASSWORD}
        )
        assert again.status_code == 401
        trail = (await client.get("/auth/admin/audit", headers=admin)).json()["items"]
        assert [r["action"] for r in trail[:2]] == ["user.updated", "user.created"]
        assert trail[0]["actor"] == "admin"


async def test_the_gateways_openapi_shows_the_admin_api(split: Split) -> None:
    async with httpx.AsyncClient(base_url=split.gateway, timeout=10) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/auth/admin/users"]) >= {"get", "post"}
    assert set(paths["/auth/admin/users/{username}"]) >= {"get", "patch"}
    assert set(paths["/auth/admin/users/{username}/roles/{role}"]) >= {"put", "delete"}
    for status in ("404", "409", "422"):
        assert status in paths["/auth/admin/users/{username}"]["patch"]["responses"]
    assert not [path for path in paths if path.startswith("/internal")]
    # One component namespace for every upstream: the admin API's audit page once shadowed
    # the authors service's (both "AuditPage"), and /api/v1/audit was checked against it.
    refs = {
        paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        for path in ("/api/v1/audit", "/auth/admin/audit")
    }
    assert len(refs) == 2, refs
