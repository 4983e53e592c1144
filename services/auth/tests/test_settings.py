from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gatehouse.auth import AuthSettings
from gatehouse.common.settings import embedded_issuer


def test_defaults_match_the_embedded_issuer_every_service_expects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GATEHOUSE_AUTH_PORT", "GATEHOUSE_AUTH_PUBLIC_URL", "KEYCLOAK_URL", "OIDC_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings()
    assert settings.port == 8003
    assert settings.embedded
    assert settings.issuer() == embedded_issuer()


def test_public_url_sets_the_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_PUBLIC_URL", "https://auth.example.com/")
    assert AuthSettings().issuer() == "https://auth.example.com/realms/gatehouse"


def test_a_wildcard_bind_address_is_not_the_issuer_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEHOUSE_AUTH_PUBLIC_URL", raising=False)
    monkeypatch.setenv("GATEHOUSE_HOST", "0.0.0.0")
    monkeypatch.setenv("GATEHOUSE_AUTH_PORT", "9003")
    assert AuthSettings().embedded_issuer_url() == "http://127.0.0.1:9003/realms/gatehouse"


def test_keycloak_url_selects_keycloak_and_its_realm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OIDC_ISSUER", raising=False)
    monkeypatch.setenv("KEYCLOAK_URL", "http://keycloak:8080")
    monkeypatch.setenv("GATEHOUSE_AUTH_REALM", "acme")
    monkeypatch.setenv("OIDC_AUDIENCE", "acme-api")
    settings = AuthSettings()
    assert not settings.embedded
    assert settings.issuer() == "http://keycloak:8080/realms/acme"
    assert settings.client_id == "acme-api"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("KEYCLOAK_URL", "keycloak:8080"), ("GATEHOUSE_AUTH_PUBLIC_URL", "ftp://auth")],
)
def test_a_wrong_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        AuthSettings()


def test_a_short_demo_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_DEMO_PASSWORD", "short")
    with pytest.raises(ValidationError, match="GATEHOUSE_DEMO_PASSWORD"):
        AuthSettings()


def test_the_database_is_sqlite_in_the_data_folder_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GATEHOUSE_AUTH_DATABASE_URL", raising=False)
    monkeypatch.setenv("GATEHOUSE_DATA_DIR", str(tmp_path))
    assert AuthSettings().sqlalchemy_url() == f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"


def test_a_postgresql_url_gets_the_asyncpg_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_DATABASE_URL", "postgresql://u:p@db:5432/auth")
    assert AuthSettings().sqlalchemy_url() == "postgresql+asyncpg://u:p@db:5432/auth"


@pytest.mark.parametrize("value", ["mysql://db/auth", "postgresql:///auth", "db:5432"])
def test_a_wrong_database_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_DATABASE_URL", value)
    with pytest.raises(ValidationError, match="GATEHOUSE_AUTH_DATABASE_URL"):
        AuthSettings()


def test_an_early_hard_lock_of_the_old_lockout_is_refused_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_LOCKOUT_FAILURES", "5")  # the pre-#11 setting
    with pytest.raises(ValidationError) as caught:
        AuthSettings()
    assert "GATEHOUSE_AUTH_LOCKOUT_FAILURES (5)" in str(caught.value)
    assert "GATEHOUSE_AUTH_SLOWDOWN_FAILURES (10)" in str(caught.value)


def test_counters_outlive_the_longest_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_AUTH_FAILURE_RESET_SECONDS", "600")
    with pytest.raises(ValidationError, match="GATEHOUSE_AUTH_FAILURE_RESET_SECONDS"):
        AuthSettings()
