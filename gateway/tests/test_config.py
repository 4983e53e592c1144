"""Configuration: the packaged defaults, env overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gatehouse.common.errors import ConfigurationError
from gatehouse.gateway import GatewaySettings, load_config
from gatehouse.gateway.config import parse_config


def test_packaged_routes_follow_the_public_surface() -> None:
    config = load_config()
    routes = {r.prefix: r for r in config.routes}
    assert routes["/auth/token"].public
    assert routes["/auth/token"].upstream == "auth"
    assert not routes["/auth/me"].public
    assert routes["/auth/me"].roles_for("GET") == ()
    for version in ("v1", "v2"):
        authors = routes[f"/api/{version}/authors"]
        assert authors.strip_prefix == "/api"
        assert authors.roles_for("GET") == ("get-authors",)
        assert authors.roles_for("PATCH") == ("update-author",)
        assert authors.roles_for("DELETE") == ("delete-author",)
        assert routes[f"/api/{version}/books"].roles_for("POST") == ("create-author",)
        assert routes[f"/api/{version}/audit"].roles_for("GET") == ("view-audit-logs",)
    assert routes["/ws"].websocket
    assert routes["/ws"].upstream == "realtime"
    assert config.upstreams["authors"].url == "http://127.0.0.1:8001"


def test_upstream_urls_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_UPSTREAM_AUTHORS_URL", "http://authors.internal:9000/")
    settings = GatewaySettings()
    config = load_config(settings.config_path, settings.upstream_overrides())
    assert config.upstreams["authors"].url == "http://authors.internal:9000"
    assert config.upstreams["auth"].url == "http://127.0.0.1:8003"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEHOUSE_UPSTREAM_REALTIME_URL", "ws://realtime:8002"),
        ("GATEHOUSE_UPSTREAM_AUTH_URL", "http://"),
        ("REDIS_URL", "http://redis:6379"),
    ],
)
def test_a_wrong_url_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable):
        GatewaySettings()


def _config(**route: object) -> dict[str, object]:
    return {
        "upstreams": {"authors": {"url": "http://127.0.0.1:8001"}},
        "rate_limits": {"default": {"limit": 10, "window": 60}},
        "routes": [{"prefix": "/a", "upstream": "authors"}, {"prefix": "/b", **route}],
    }


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"upstream": "autors"}, "routes[1].upstream: unknown upstream 'autors'"),
        ({"upstream": "authors", "rate_limit": "burst"}, "routes[1].rate_limit: unknown policy"),
        ({"upstream": "authors", "methods": ["GE T"]}, "routes[1].methods"),
        ({"upstream": "authors", "public": True, "roles": {"GET": ["x"]}}, "routes[1]: a public"),
        ({"upstream": "authors", "strip_prefix": "/api"}, "routes[1]: strip_prefix '/api'"),
        ({"upstream": "authors", "colour": "red"}, "routes[1].colour: Extra inputs"),
        ({"upstream": "authors", "prefix": "b/"}, "routes[1].prefix: must start with '/'"),
    ],
)
def test_errors_name_the_offending_key(route: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_config(_config(**route), "my.yaml")
    assert str(caught.value).startswith("my.yaml: ")
    assert message in str(caught.value)


def test_bad_upstream_url_and_trusted_proxy_name_their_keys() -> None:
    data = _config(upstream="authors")
    data["upstreams"] = {"authors": {"url": "ftp://x", "pool_size": 0}}
    data["trusted_proxies"] = ["10.0.0.0/8", "not-a-net"]
    with pytest.raises(ConfigurationError) as caught:
        parse_config(data)
    text = str(caught.value)
    assert "upstreams.authors.url" in text
    assert "upstreams.authors.pool_size" in text
    assert "trusted_proxies: not an IP network: 'not-a-net'" in text


def test_a_config_file_replaces_the_packaged_one(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "upstreams: {x: {url: 'http://x:1'}}\n"
        "routes: [{prefix: /x, upstream: x, rate_limit: null}]\n"
    )
    config = load_config(path)
    assert [r.prefix for r in config.routes] == ["/x"]


def test_unreadable_or_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.yaml: cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [\n")
    with pytest.raises(ConfigurationError, match=r"broken\.yaml: not valid YAML"):
        load_config(broken)
