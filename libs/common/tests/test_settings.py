"""Common settings: each value from its own variable, and checked with a message naming it."""

from __future__ import annotations

import pytest

from gatehouse.common.settings import BusSettings, CommonSettings, mask_url


def test_only_the_variables_named_in_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a Kubernetes namespace injects for a Service named "auth", and another
    # service's variable of the same field name.
    monkeypatch.setenv("AUTH_PORT", "tcp://10.0.0.7:8003")
    monkeypatch.setenv("HOST", "10.0.0.9")
    monkeypatch.setenv("AMQP_EXCHANGE", "not.ours")
    settings = BusSettings()
    assert settings.auth_port == 8003
    assert settings.host == "127.0.0.1"
    assert settings.amqp_exchange == "gatehouse.events"


def test_code_may_still_pass_field_names() -> None:
    settings = CommonSettings(oidc_issuer="https://sso.example.com/realms/x")
    assert settings.issuer() == "https://sso.example.com/realms/x"


def test_passwords_are_masked_in_messages() -> None:
    assert mask_url("amqp://guest:s3cret@rabbit:5672/") == "amqp://guest:***@rabbit:5672/"
    assert mask_url("postgresql://u:s3cret@db:port/x") == "postgresql://u:***@db:port/x"
    assert mask_url("redis://redis:6379/0") == "redis://redis:6379/0"
