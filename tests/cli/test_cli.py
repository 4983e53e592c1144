"""The `gatehouse` command as an operator meets it: help, and start-up errors that
name the variable in one line instead of a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gatehouse.testing import AmqpNamespace

GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
SERVICE_URLS = (
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
    "OIDC_ISSUER",
    "KEYCLOAK_URL",
    "GATEHOUSE_PROFILE",
    "LOG_LEVEL",
)
EMBEDDED = {"GATEHOUSE_PROFILE": "embedded"}


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
    result = gatehouse("run", "authors", cwd=tmp_path, DATABASE_URL=url, **EMBEDDED)
    assert result.returncode == 2
    assert "gatehouse: configuration error: DATABASE_URL: cannot reach the database" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr


@pytest.mark.parametrize(("service", "database"), [("authors", "authors.db"), ("auth", "auth.db")])
def test_migrate_creates_the_embedded_database(tmp_path: Path, service: str, database: str) -> None:
    result = gatehouse("migrate", service, cwd=tmp_path, GATEHOUSE_DATA_DIR="state")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / database).stat().st_size > 0
    again = gatehouse("migrate", service, cwd=tmp_path, GATEHOUSE_DATA_DIR="state")
    assert again.returncode == 0, again.stderr


def test_auth_refuses_production_without_keycloak_or_the_explicit_opt_in(tmp_path: Path) -> None:
    result = gatehouse("run", "auth", cwd=tmp_path, GATEHOUSE_DEMO_PASSWORD="demo-pass-1")
    assert result.returncode == 2
    (refusal,) = [line for line in result.stderr.splitlines() if "KEYCLOAK_URL" in line]
    assert refusal.startswith("gatehouse: refusing to start in production: KEYCLOAK_URL")
    assert "GATEHOUSE_AUTH_EMBEDDED_ISSUER=true" in refusal
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".data").exists(), "something started before the check"


def test_a_standalone_relay_without_a_bus_refuses_to_start(tmp_path: Path) -> None:
    result = gatehouse("run", "relay", cwd=tmp_path, **EMBEDDED)
    assert result.returncode == 2
    assert result.stderr.startswith("gatehouse: configuration error: AMQP_URL: ")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / ".data").exists()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (
            "DATABASE_URL",
            "postgresql://gatehouse:s3cret-pw@db:fivefourthreetwo/authors",
            "DATABASE_URL has a port that is not a number: "
            "'postgresql://gatehouse:***@db:fivefourthreetwo/authors'",
        ),
        ("AMQP_URL", "rabbit:5672", "AMQP_URL must start with one of amqp://, amqps://; got"),
        ("GATEHOUSE_PROFILE", "staging", "GATEHOUSE_PROFILE must be embedded or production"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable_and_the_value(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    result = gatehouse("run", "authors", cwd=tmp_path, **{**EMBEDDED, variable: value})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gatehouse: configuration error: {expected}")
    assert "s3cret-pw" not in result.stderr


def test_a_busy_port_is_one_line_naming_its_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = gatehouse(
            "run", "realtime", cwd=tmp_path, GATEHOUSE_REALTIME_PORT=port, **EMBEDDED
        )
    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if "gatehouse:" in x]
    assert line.startswith("gatehouse: configuration error: GATEHOUSE_REALTIME_PORT: port ")
    assert "in use" in line
    assert "Traceback" not in result.stderr
    assert "Errno" not in result.stderr


@pytest.mark.services
def test_a_relay_on_an_unmigrated_database_says_to_migrate(
    tmp_path: Path, postgres_url: str, amqp_namespace: AmqpNamespace
) -> None:
    result = gatehouse(
        "run",
        "relay",
        cwd=tmp_path,
        DATABASE_URL=postgres_url,
        AMQP_URL=amqp_namespace.url,
        GATEHOUSE_AMQP_EXCHANGE=amqp_namespace.exchange,
        **EMBEDDED,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("gatehouse: configuration error: DATABASE_URL: the database is not")
    assert line.endswith("run `gatehouse migrate authors`")


def test_an_unreachable_redis_stops_the_gateway_naming_the_variable(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"redis://:s3cret-pw@127.0.0.1:{closed.getsockname()[1]}/0"
        result = gatehouse(
            "run",
            "gateway",
            cwd=tmp_path,
            REDIS_URL=url,
            GATEHOUSE_GATEWAY_PORT="0",
            GATEHOUSE_ADMIN_PORT="0",
            **EMBEDDED,
        )
    assert result.returncode == 2
    assert "gatehouse: configuration error: REDIS_URL: cannot reach Redis at redis://" in (
        result.stderr
    )
    assert "s3cret-pw" not in result.stderr
    assert "Traceback" not in result.stderr
