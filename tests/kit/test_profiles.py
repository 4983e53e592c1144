"""The profile matrix: every default that is safe on one machine only is refused in
production, naming its variable; the embedded profile accepts them all.

Each row is a service's settings read from an environment that is complete for
production but for the one thing the row takes away.
"""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse.common.errors import UnsafeForProduction
from gatehouse.common.settings import CommonSettings

ISSUER = "https://sso.example.com/realms/gatehouse"
PRODUCTION: dict[str, dict[str, str]] = {
    "gateway": {"OIDC_ISSUER": ISSUER, "REDIS_URL": "redis://redis:6379/0"},
    "realtime": {"OIDC_ISSUER": ISSUER, "AMQP_URL": "amqp://u:p@rabbit/"},
    "authors": {
        "OIDC_ISSUER": ISSUER,
        "AMQP_URL": "amqp://u:p@rabbit/",
        "DATABASE_URL": "postgresql://u:p@db/authors",
    },
    "auth": {"KEYCLOAK_URL": "https://sso.example.com"},
}
EMBEDDED_ISSUER = {
    "GATEHOUSE_AUTH_EMBEDDED_ISSUER": "true",
    "GATEHOUSE_AUTH_KEY_PASSPHRASE": "a long passphrase from a secret",
    "GATEHOUSE_AUTH_PUBLIC_URL": "https://auth.example.com",
}
VARIABLES = (
    "OIDC_ISSUER",
    "AMQP_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "KEYCLOAK_URL",
    "GATEHOUSE_PROFILE",
    "GATEHOUSE_RATE_LIMIT_STORE",
    "GATEHOUSE_DEMO_PASSWORD",
)
# The authors service lists these in its rewrite (#7); until then they are strict xfails.
PENDING: set[tuple[str, str]] = set()

# (service, variables removed, variables added, the variable the refusal names)
MATRIX = [
    ("gateway", ["OIDC_ISSUER"], {}, "OIDC_ISSUER"),
    ("gateway", ["REDIS_URL"], {}, "REDIS_URL"),
    ("realtime", ["OIDC_ISSUER"], {}, "OIDC_ISSUER"),
    ("realtime", ["AMQP_URL"], {}, "AMQP_URL"),
    ("authors", ["OIDC_ISSUER"], {}, "OIDC_ISSUER"),
    ("authors", ["AMQP_URL"], {}, "AMQP_URL"),
    ("authors", ["DATABASE_URL"], {}, "DATABASE_URL"),
    ("auth", ["KEYCLOAK_URL"], {}, "KEYCLOAK_URL"),
    ("auth", ["KEYCLOAK_URL"], {"GATEHOUSE_DEMO_PASSWORD": "demo-pass-1"}, "KEYCLOAK_URL"),
    (
        "auth",
        ["KEYCLOAK_URL", "GATEHOUSE_AUTH_KEY_PASSPHRASE"],
        EMBEDDED_ISSUER,
        "GATEHOUSE_AUTH_KEY_PASSPHRASE",
    ),
    (
        "auth",
        ["KEYCLOAK_URL", "GATEHOUSE_AUTH_PUBLIC_URL"],
        EMBEDDED_ISSUER,
        "GATEHOUSE_AUTH_PUBLIC_URL",
    ),
]


def settings_class(service: str) -> type[CommonSettings]:
    if service == "gateway":
        from gatehouse.gateway.settings import GatewaySettings

        return GatewaySettings
    if service == "realtime":
        from gatehouse.realtime.settings import RealtimeSettings

        return RealtimeSettings
    if service == "authors":
        from gatehouse.authors.settings import AuthorsSettings

        return AuthorsSettings
    from gatehouse.auth.settings import AuthSettings

    return AuthSettings


def read(service: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings as the launcher reads them: from this environment only."""
    for name in [*VARIABLES, *EMBEDDED_ISSUER]:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()


@pytest.mark.parametrize("service", sorted(PRODUCTION))
def test_a_complete_production_environment_is_accepted(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = read(
        service, {**PRODUCTION[service], "GATEHOUSE_PROFILE": "production"}, monkeypatch
    )
    assert settings.production_problems() == []
    settings.check_profile()


@pytest.mark.parametrize(("service", "removed", "added", "variable"), MATRIX)
def test_production_refuses_each_default_of_one_machine(
    service: str,
    removed: list[str],
    added: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    if (service, variable) in PENDING:
        reason = f"{service} lists {variable} in its rewrite (#7)"
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    environment = {**PRODUCTION[service], **added, "GATEHOUSE_PROFILE": "production"}
    for name in removed:
        environment.pop(name, None)
    settings = read(service, environment, monkeypatch)
    with pytest.raises(UnsafeForProduction) as refused:
        settings.check_profile()
    assert len(refused.value.problems) == 1, refused.value.problems
    (problem,) = refused.value.problems
    assert problem.startswith(f"{variable} is not set: ")
    assert "\n" not in problem


@pytest.mark.parametrize(("service", "removed", "added", "variable"), MATRIX)
def test_the_embedded_profile_accepts_every_one_of_them(
    service: str,
    removed: list[str],
    added: dict[str, str],
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = {**PRODUCTION[service], **added, "GATEHOUSE_PROFILE": "embedded"}
    for name in removed:
        environment.pop(name, None)
    read(service, environment, monkeypatch).check_profile()


def test_one_replica_on_purpose_needs_no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {
        "OIDC_ISSUER": ISSUER,
        "GATEHOUSE_RATE_LIMIT_STORE": "memory",
        "GATEHOUSE_PROFILE": "production",
    }
    read("gateway", environment, monkeypatch).check_profile()


def test_production_seeds_no_demo_identities_without_a_demo_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = {**EMBEDDED_ISSUER, "GATEHOUSE_PROFILE": "production"}
    assert read("auth", base, monkeypatch).demo_users is False
    with_password = {**base, "GATEHOUSE_DEMO_PASSWORD": "demo-pass-1"}
    assert read("auth", with_password, monkeypatch).demo_users is True
    assert read("auth", {"GATEHOUSE_PROFILE": "embedded"}, monkeypatch).demo_users is True
