"""`gatehouse auth rotate-keys` as an operator runs it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .test_cli import EMBEDDED, gatehouse


def stored_keys(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / "auth.db") as db:
        query = "SELECT kid, private_pem FROM auth_signing_keys ORDER BY created_at"
        return list(db.execute(query))


def test_rotate_keys_adds_a_sealed_key(tmp_path: Path) -> None:
    env = {**EMBEDDED, "GATEHOUSE_DATA_DIR": "state", "GATEHOUSE_AUTH_KEY_PASSPHRASE": "p" * 16}
    assert gatehouse("migrate", "auth", cwd=tmp_path, **env).returncode == 0
    first = gatehouse("auth", "rotate-keys", "--activate-in", "30", cwd=tmp_path, **env)
    second = gatehouse("auth", "rotate-keys", cwd=tmp_path, **env)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    keys = stored_keys(tmp_path / "state")
    assert len(keys) == 3  # the one installed first, and the two added
    assert f"added signing key {keys[1][0]}; it signs from " in first.stdout
    assert all(pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----") for _, pem in keys)


def test_rotate_keys_needs_the_passphrase_that_sealed_the_keys(tmp_path: Path) -> None:
    env = {**EMBEDDED, "GATEHOUSE_DATA_DIR": "state"}
    sealed = {**env, "GATEHOUSE_AUTH_KEY_PASSPHRASE": "p" * 16}
    assert gatehouse("migrate", "auth", cwd=tmp_path, **env).returncode == 0
    assert gatehouse("auth", "rotate-keys", cwd=tmp_path, **sealed).returncode == 0
    result = gatehouse("auth", "rotate-keys", cwd=tmp_path, **env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gatehouse: configuration error: GATEHOUSE_AUTH_KEY_PASSPHRASE: is needed to read "
        f"signing key {stored_keys(tmp_path / 'state')[0][0]}"
    ]


def test_rotate_keys_in_production_wants_the_passphrase(tmp_path: Path) -> None:
    result = gatehouse("auth", "rotate-keys", cwd=tmp_path, GATEHOUSE_AUTH_EMBEDDED_ISSUER="true")
    assert result.returncode == 2
    assert "GATEHOUSE_AUTH_KEY_PASSPHRASE is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotate_keys_with_keycloak_says_where_keys_rotate(tmp_path: Path) -> None:
    result = gatehouse(
        "auth", "rotate-keys", cwd=tmp_path, **EMBEDDED, KEYCLOAK_URL="http://keycloak.test"
    )
    assert result.returncode == 2
    assert "KEYCLOAK_URL: is set: Keycloak signs the tokens" in result.stderr
