"""The admin API (``/auth/admin``) on the embedded issuer, in-process, with an in-process bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from gatehouse.auth import create_app
from gatehouse.auth.admin.schemas import AdminRole
from gatehouse.auth.embedded.users import DEMO_ROLES, subject_for
from gatehouse.common import InMemoryEventBus
from gatehouse.common.events import CloudEvent
from gatehouse.common.identity import ALL_ROLES

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings, running
from .test_api import PROBLEM, bearer, login

EVENT_SCHEMAS = Path(__file__).parents[3] / "tests/contract/events"
NEW_PASSWORD = "a new password 1"


class Admin:
    """A client of one running app, logged in as ``admin``; the events it published."""

    def __init__(self, client: httpx.AsyncClient, events: list[CloudEvent]) -> None:
        self.client = client
        self.events = events
        self.headers: dict[str, str] = {}

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = {**self.headers, **(headers or {})}
        return await self.client.request(method, path, headers=sent, **kwargs)

    async def create(self, username: str, *roles: str, **extra: Any) -> httpx.Response:
        body = {"username": username, "password": DEMO_PASSWORD, "roles": list(roles), **extra}
        return await self.request("POST", "/auth/admin/users", json=body)

    async def event(self, kind: str, username: str) -> CloudEvent:
        for _ in range(100):
            for event in self.events:
                if event.type == kind and event.data["username"] == username:
                    return event
            await asyncio.sleep(0.05)
        pytest.fail(f"no {kind} for {username}: {[e.type for e in self.events]}")


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    bus = InMemoryEventBus()
    events: list[CloudEvent] = []

    async def received(event: CloudEvent) -> None:
        events.append(event)

    await bus.subscribe("gatehouse.user.*", received)
    app = create_app(auth_settings(tmp_path), password_hasher=FAST_HASHER, bus=bus)
    async with running(app) as client:
        admin = Admin(client, events)
        admin.headers = bearer(await login(client, "admin"))
        yield admin
    await bus.close()


async def test_roles_are_exactly_those_of_design_12() -> None:
    assert tuple(role.value for role in AdminRole) == ALL_ROLES


async def test_an_admin_creates_a_user_who_can_log_in(admin: Admin) -> None:
    created = await admin.create("Ada", "get-authors", "view-audit-logs")
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == "/auth/admin/users/ada"
    assert user["username"] == "ada"
    assert user["subject"] == subject_for("ada")
    assert user["roles"] == ["get-authors", "view-audit-logs"]
    assert user["enabled"] is True
    assert "password" not in json.dumps(user)
    me = await admin.client.get("/auth/me", headers=bearer(await login(admin.client, "ada")))
    assert me.json()["roles"] == ["get-authors", "view-audit-logs"]
    assert (await admin.request("GET", "/auth/admin/users/ADA")).json() == user


async def test_a_taken_username_is_409_whatever_its_case(admin: Admin) -> None:
    assert (await admin.create("grace")).status_code == 201
    for name in ("grace", "Grace", "viewer"):
        taken = await admin.create(name)
        assert taken.status_code == 409
        assert taken.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x", "password": "short"},
        {"username": "x", "password": DEMO_PASSWORD, "roles": ["root"]},
        {"username": "bad name", "password": DEMO_PASSWORD},
        {"username": "x", "password": DEMO_PASSWORD, "superuser": True},
        {"password": DEMO_PASSWORD},
    ],
)
async def test_an_invalid_new_user_is_422(admin: Admin, body: dict[str, Any]) -> None:
    response = await admin.request("POST", "/auth/admin/users", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_users_are_listed_in_pages_of_at_most_100(admin: Admin) -> None:
    page = (await admin.request("GET", "/auth/admin/users", params={"per_page": 2})).json()
    assert page["meta"] == {"page": 1, "per_page": 2, "total": len(DEMO_ROLES), "pages": 3}
    assert [u["username"] for u in page["items"]] == ["admin", "auditor"]
    last = await admin.request("GET", "/auth/admin/users", params={"per_page": 2, "page": 3})
    assert [u["username"] for u in last.json()["items"]] == ["viewer"]
    for params in ({"per_page": 101}, {"page": 0}, {"page": 10**12}):
        assert (await admin.request("GET", "/auth/admin/users", params=params)).status_code == 422


async def test_a_disabled_user_cannot_log_in_nor_refresh(admin: Admin) -> None:
    tokens = await login(admin.client, "editor")
    disabled = await admin.request("PATCH", "/auth/admin/users/editor", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    refused = await admin.client.post(
        "/auth/token", json={"username": "editor", "password": DEMO_PASSWORD}
    )
    assert refused.status_code == 401
    refresh = await admin.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401
    assert (await admin.client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    items = (await admin.client.get("/internal/revocations")).json()["items"]
    assert {"kind": "subject", "id": subject_for("editor")} in [
        {"kind": i["kind"], "id": i["id"]} for i in items
    ]
    enabled = await admin.request("PATCH", "/auth/admin/users/editor", json={"enabled": True})
    assert enabled.json()["enabled"] is True
    assert (await login(admin.client, "editor"))["access_token"]


async def test_a_new_password_replaces_the_old_and_ends_the_sessions(admin: Admin) -> None:
    tokens = await login(admin.client, "viewer")
    changed = await admin.request(
        "PATCH", "/auth/admin/users/viewer", json={"password": NEW_PASSWORD}
    )
    assert changed.status_code == 200
    old = await admin.client.post(
        "/auth/token", json={"username": "viewer", "password": DEMO_PASSWORD}
    )
    assert old.status_code == 401
    new = await admin.client.post(
        "/auth/token", json={"username": "viewer", "password": NEW_PASSWORD}
    )
    assert new.status_code == 200
    assert (await admin.client.get("/auth/me", headers=bearer(tokens))).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"enabled": None},
        {"password": None},  # was a 500: the length check ran on None
        {"enabled": False, "password": None},
        {"password": "short"},
        {"enabled": "no"},
        {"role": "admin"},
    ],
)
async def test_an_invalid_patch_is_422(admin: Admin, body: dict[str, Any]) -> None:
    response = await admin.request("PATCH", "/auth/admin/users/viewer", json=body)
    assert response.status_code == 422


async def test_an_unknown_user_is_404(admin: Admin) -> None:
    for method, path, body in [
        ("GET", "/auth/admin/users/ghost", None),
        ("PATCH", "/auth/admin/users/ghost", {"enabled": False}),
        ("PUT", "/auth/admin/users/ghost/roles/admin", None),
        ("DELETE", "/auth/admin/users/ghost/roles/admin", None),
    ]:
        response = await admin.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == PROBLEM


async def test_roles_are_granted_and_revoked(admin: Admin) -> None:
    tokens = await login(admin.client, "nobody")
    granted = await admin.request("PUT", "/auth/admin/users/nobody/roles/get-authors")
    assert granted.json()["roles"] == ["get-authors"]
    again = await admin.request("PUT", "/auth/admin/users/nobody/roles/get-authors")
    assert again.json()["roles"] == ["get-authors"]
    refreshed = await admin.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    me = await admin.client.get("/auth/me", headers=bearer(refreshed.json()))
    assert me.json()["roles"] == ["get-authors"]
    revoked = await admin.request("DELETE", "/auth/admin/users/nobody/roles/get-authors")
    assert revoked.json()["roles"] == []
    gone = await admin.request("DELETE", "/auth/admin/users/nobody/roles/get-authors")
    assert gone.status_code == 404
    unknown = await admin.request("PUT", "/auth/admin/users/nobody/roles/root")
    assert unknown.status_code == 422


async def test_an_admin_cannot_lock_themselves_out(admin: Admin) -> None:
    disable = await admin.request("PATCH", "/auth/admin/users/admin", json={"enabled": False})
    assert disable.status_code == 409
    demote = await admin.request("DELETE", "/auth/admin/users/admin/roles/admin")
    assert demote.status_code == 409
    assert (await admin.request("GET", "/auth/admin/users/admin")).json()["enabled"] is True


ROUTES = [
    ("GET", "/auth/admin/users", None),
    ("POST", "/auth/admin/users", {"username": "x1", "password": DEMO_PASSWORD}),
    ("GET", "/auth/admin/users/viewer", None),
    ("PATCH", "/auth/admin/users/viewer", {"enabled": True}),
    ("PUT", "/auth/admin/users/viewer/roles/get-authors", None),
    ("DELETE", "/auth/admin/users/auditor/roles/view-audit-logs", None),
    ("GET", "/auth/admin/audit", None),
]


@pytest.mark.parametrize("identity", [*DEMO_ROLES, "anonymous"])
async def test_only_admins_reach_the_admin_api(admin: Admin, identity: str) -> None:
    headers = {} if identity == "anonymous" else bearer(await login(admin.client, identity))
    for method, path, body in ROUTES:
        response = await admin.client.request(method, path, json=body, headers=headers)
        expected = {"admin": (200, 201), "anonymous": (401,)}.get(identity, (403,))
        assert response.status_code in expected, (identity, method, path, response.text)


async def test_a_demoted_admin_is_refused_though_their_token_says_admin(admin: Admin) -> None:
    assert (await admin.create("root2", "admin")).status_code == 201
    second = bearer(await login(admin.client, "root2"))
    await admin.request("DELETE", "/auth/admin/users/root2/roles/admin")
    refused = await admin.client.get("/auth/admin/users", headers=second)
    assert refused.status_code == 403


async def test_every_change_is_audited_without_passwords(admin: Admin) -> None:
    await admin.create("lin", "get-authors")
    await admin.request("PATCH", "/auth/admin/users/lin", json={"password": NEW_PASSWORD})
    await admin.request("PATCH", "/auth/admin/users/lin", json={"enabled": False})
    await admin.request("PATCH", "/auth/admin/users/lin", json={"enabled": False})  # no change
    await admin.request("PUT", "/auth/admin/users/lin/roles/create-author")
    await admin.request("DELETE", "/auth/admin/users/lin/roles/get-authors")
    response = await admin.request("GET", "/auth/admin/audit", headers={"User-Agent": "t/1"})
    trail = response.json()
    actions = [r["action"] for r in trail["items"]]
    assert actions == [
        "user.role_revoked",
        "user.role_granted",
        "user.updated",
        "user.updated",
        "user.created",
    ]
    assert trail["meta"]["total"] == 5
    for record in trail["items"]:
        assert record["actor"] == "admin"
        assert record["actor_subject"] == subject_for("admin")
        assert "admin" in record["actor_roles"]
        assert record["resource"] == "/auth/admin/users/lin"
        assert record["request_id"]
        assert record["ip"]
        assert NEW_PASSWORD not in json.dumps(record)
        assert DEMO_PASSWORD not in json.dumps(record)
    assert trail["items"][2]["data"]["changed"] == ["enabled"]
    assert trail["items"][3]["data"]["changed"] == ["password"]


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("gatehouse.user.created", None),
        ("gatehouse.user.updated", ("PATCH", "", {"enabled": False})),
        ("gatehouse.user.role_granted", ("PUT", "/roles/delete-author", None)),
        ("gatehouse.user.role_revoked", ("DELETE", "/roles/get-authors", None)),
    ],
)
async def test_every_change_is_published_as_its_checked_in_event(
    admin: Admin, kind: str, change: tuple[str, str, Any] | None
) -> None:
    await admin.create("ev", "get-authors")
    if change is not None:
        method, suffix, body = change
        response = await admin.request(method, f"/auth/admin/users/ev{suffix}", json=body)
        assert response.status_code == 200
    event = await admin.event(kind, "ev")
    schema = json.loads((EVENT_SCHEMAS / kind / "v1.json").read_text())
    errors = [
        e.message
        for e in Draft202012Validator(schema).iter_errors(
            event.model_dump(mode="json", exclude_none=True)
        )
    ]
    assert not errors
    assert event.subject == subject_for("ev")
    assert event.data["actor"] == {"subject": subject_for("admin"), "username": "admin"}
    sequences = [e.sequence for e in admin.events]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)


async def test_a_change_is_kept_across_a_restart_with_the_same_demo_password(
    tmp_path: Path,
) -> None:
    settings = auth_settings(tmp_path)
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        headers = bearer(await login(client, "admin"))
        await client.patch(
            "/auth/admin/users/viewer", json={"password": NEW_PASSWORD}, headers=headers
        )
        await client.patch("/auth/admin/users/nobody", json={"enabled": False}, headers=headers)
    other = auth_settings(tmp_path, GATEHOUSE_DEMO_PASSWORD="another demo password")
    async with running(create_app(other, password_hasher=FAST_HASHER)) as client:
        viewer = {"username": "viewer", "password": NEW_PASSWORD}
        assert (await client.post("/auth/token", json=viewer)).status_code == 200
        nobody = {"username": "nobody", "password": "another demo password"}
        assert (await client.post("/auth/token", json=nobody)).status_code == 401
        # an untouched demo identity follows the demo password
        editor = {"username": "editor", "password": "another demo password"}
        assert (await client.post("/auth/token", json=editor)).status_code == 200


async def test_with_keycloak_the_admin_api_is_501_after_the_role_check(
    issuer_url: str, tmp_path: Path
) -> None:
    settings = auth_settings(tmp_path / "kc-mode", KEYCLOAK_URL=issuer_url)
    async with running(create_app(settings, password_hasher=FAST_HASHER)) as client:
        for who, status in (("admin", 501), ("viewer", 403)):
            headers = bearer(await login(client, who))
            response = await client.get("/auth/admin/users", headers=headers)
            assert response.status_code == status
            assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/auth/admin/users")).status_code == 401
        assert (await client.get("/internal/revocations")).json()["items"] == []


@pytest.mark.parametrize("username", ["..", ".hidden", "a b", "a%2Fb"])
async def test_a_username_no_proxy_would_pass_is_422(admin: Admin, username: str) -> None:
    response = await admin.request("GET", f"/auth/admin/users/{username}")
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == PROBLEM


async def test_key_rotation_takes_no_boolean_for_seconds(admin: Admin) -> None:
    rotate = await admin.request("POST", "/auth/admin/keys/rotate", json={"activate_in": False})
    assert rotate.status_code == 422
    assert (
        await admin.request("POST", "/auth/admin/keys/rotate", json={"activate_in": 30})
    ).status_code == 201
