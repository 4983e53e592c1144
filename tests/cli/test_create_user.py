"""`gatehouse auth create-user` as an operator runs it: the first administrator of an issuer
that has no demo identity, made from the shell, then using the admin API."""

from __future__ import annotations

import asyncio
import getpass
import json
import subprocess
from pathlib import Path

import httpx

from gatehouse.auth import create_app
from gatehouse.auth.settings import AuthSettings

from .test_cli import EMBEDDED, GATEHOUSE, _clean_environment, gatehouse

PASSWORD = "first admin password 1"
ENV = {**EMBEDDED, "GATEHOUSE_DATA_DIR": "state"}


def create_user(
    folder: Path, *args: str, password: str = PASSWORD, **env: str
) -> subprocess.CompletedProcess[str]:
    """The command with the password on standard input, as a script would pipe it."""
    return subprocess.run(
        [GATEHOUSE, "auth", "create-user", *args],
        cwd=folder,
        env={**_clean_environment(), "GATEHOUSE_LOG_JSON": "0", **ENV, **env},
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def as_root(folder: Path) -> tuple[int, list[str], list[dict[str, object]]]:
    """Log in as the new user on the auth app over that database: the login's status,
    the users the admin API lists, the audit trail it shows."""
    settings = AuthSettings.model_validate({**EMBEDDED, "GATEHOUSE_DATA_DIR": str(folder)})
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope, receive, send):  # type: ignore[no-untyped-def]
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as http:
            login = await http.post("/auth/token", json={"username": "root", "password": PASSWORD})
            if login.status_code != 200:
                return login.status_code, [], []
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            users = (await http.get("/auth/admin/users", headers=headers)).json()
            audit = (await http.get("/auth/admin/audit", headers=headers)).json()
    return 200, [u["username"] for u in users["items"]], audit["items"]


def test_the_first_admin_is_made_from_the_shell_and_can_use_the_admin_api(tmp_path: Path) -> None:
    assert gatehouse("migrate", "auth", cwd=tmp_path, **ENV).returncode == 0
    made = create_user(tmp_path, "--username", "Root", "--role", "admin", "--role", "get-authors")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created user root (admin, get-authors)"
    assert PASSWORD not in made.stdout + made.stderr
    status, users, audit = asyncio.run(as_root(tmp_path / "state"))
    assert status == 200
    assert "root" in users
    created = [
        r for r in audit if r["action"] == "user.created" and r["resource"].endswith("/root")
    ]
    assert len(created) == 1
    assert created[0]["actor"] == f"cli:{getpass.getuser()}"
    assert PASSWORD not in json.dumps(audit)


def test_a_taken_name_a_weak_password_and_no_name_are_refused_with_one_line(tmp_path: Path) -> None:
    assert gatehouse("migrate", "auth", cwd=tmp_path, **ENV).returncode == 0
    assert create_user(tmp_path, "--username", "root").returncode == 0
    taken = create_user(tmp_path, "--username", "ROOT")
    weak = create_user(tmp_path, "--username", "other", password="short")
    nameless = create_user(tmp_path, "--role", "admin")
    assert (taken.returncode, taken.stderr.strip()) == (1, "gatehouse: user root exists already")
    assert weak.returncode == 2
    assert weak.stderr.startswith("gatehouse: configuration error: password:")
    assert "short" not in weak.stderr
    assert (nameless.returncode, nameless.stderr.strip()) == (
        2,
        "gatehouse: create-user needs --username",
    )
    assert all("Traceback" not in r.stderr for r in (taken, weak, nameless))


def test_with_keycloak_users_are_made_in_its_realm(tmp_path: Path) -> None:
    result = create_user(tmp_path, "--username", "root", KEYCLOAK_URL="http://keycloak.test")
    assert result.returncode == 2
    assert "KEYCLOAK_URL: is set: Keycloak holds the users" in result.stderr
