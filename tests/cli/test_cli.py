"""The `gatehouse` command as an operator meets it: help, and start-up errors that
name the variable in one line instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
SERVICE_URLS = ("DATABASE_URL", "AMQP_URL", "REDIS_URL", "OIDC_ISSUER", "KEYCLOAK_URL")


def gatehouse(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEHOUSE, *args],
        cwd=cwd,
        env={**_clean_environment(), "GATEHOUSE_LOG_JSON": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SERVICE_URLS}


def test_help_explains_every_mode(tmp_path: Path) -> None:
    result = gatehouse("run", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for mode in ("all", "gateway", "authors", "realtime", "auth", "relay"):
        assert f"\n  {mode} " in result.stdout
    assert "migrate" in gatehouse("--help", cwd=tmp_path).stdout


@pytest.mark.parametrize(
    ("mode", "variable", "value"),
    [
        ("authors", "DATABASE_URL", "mysql://db/authors"),
        ("realtime", "AMQP_URL", "http://broker/"),
        ("gateway", "REDIS_URL", "memcached://cache"),
        ("auth", "OIDC_ISSUER", "ftp://issuer"),
    ],
)
def test_a_wrong_url_is_refused_naming_the_variable(
    tmp_path: Path, mode: str, variable: str, value: str
) -> None:
    result = gatehouse("run", mode, cwd=tmp_path, **{variable: value})
    assert result.returncode == 2
    assert f"gatehouse: configuration error: {variable}" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    url = "postgresql://gatehouse:s3cret-pw@127.0.0.1:1/authors"
    result = gatehouse("run", "authors", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 2
    assert "gatehouse: configuration error: DATABASE_URL: cannot reach the database" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr


def test_migrate_creates_the_embedded_database(tmp_path: Path) -> None:
    result = gatehouse("migrate", cwd=tmp_path, GATEHOUSE_DATA_DIR="state")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "authors.db").stat().st_size > 0
    again = gatehouse("migrate", cwd=tmp_path, GATEHOUSE_DATA_DIR="state")
    assert again.returncode == 0, again.stderr
