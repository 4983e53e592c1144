"""Config hot reload: a changed file applies, an invalid one is refused, no request is lost."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gatehouse.common.errors import ConfigurationError
from gatehouse.gateway import GatewayConfig

from .conftest import config_for


def write(path: Path, config: GatewayConfig) -> None:
    data = config.model_dump(mode="json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    tmp.replace(path)  # as editors and ConfigMap updates do: one atomic rename


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``condition`` (the file watcher and the signal handler run on their own)."""
    async with asyncio.timeout(seconds):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_a_changed_file_applies_and_an_invalid_one_is_refused(
    start_gateway_app, issuer, upstream, http, tmp_path, caplog
) -> None:
    path = tmp_path / "gateway.yaml"
    write(path, config_for(upstream.url))
    headers = issuer.bearer(["get-authors"])
    settings = {"config_path": path, "config_watch": 0.05}
    async with start_gateway_app(None, **settings) as (app, url, _):
        before = await http.get(url + "/api/v1/authors", headers=headers)
        routes = [r for r in app.config.routes if r.prefix != "/api/v1/authors"]
        write(path, config_for(upstream.url, routes=[r.model_dump() for r in routes]))
        await wait_for(lambda: all(r.prefix != "/api/v1/authors" for r in app.config.routes))
        after = await http.get(url + "/api/v1/authors", headers=headers)
        with caplog.at_level(logging.ERROR, "gatehouse.gateway"):
            path.write_text("upstreams: {}\nroutes: [{prefix: /x, upstream: nowhere}]\n")
            await wait_for(lambda: "routes[0].upstream" in caplog.text)
        still = await http.get(url + "/api/v2/authors", headers=headers)
    assert before.status_code == 200
    assert after.status_code == 404
    assert "unknown upstream 'nowhere'" in caplog.text
    assert still.status_code == 200  # the last good config keeps serving


async def test_sighup_reloads(start_gateway_app, issuer, upstream, http, tmp_path) -> None:
    path = tmp_path / "gateway.yaml"
    write(path, config_for(upstream.url))
    settings = {"config_path": path, "config_watch": 0}
    async with start_gateway_app(None, **settings) as (app, url, _):
        # Without the gateway's handler SIGHUP would end the test run: check it first.
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        write(
            path,
            config_for(
                upstream.url,
                rate_limits={
                    "default": {"limit": 1, "window": 60},
                    "login": {"limit": 1, "window": 60},
                },
            ),
        )
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: app.config.rate_limits["default"].limit == 1)
        response = await http.get(url + "/api/v1/authors", headers=issuer.bearer(["admin"]))
    assert response.headers["ratelimit-policy"] == '"default";q=1;w=60'


async def test_reload_under_load_loses_no_request(
    start_gateway_app, issuer, upstream, http, tmp_path
) -> None:
    path = tmp_path / "gateway.yaml"
    generous = {"limit": 100_000, "window": 60}
    policies = {"default": generous, "login": generous}
    write(path, config_for(upstream.url, rate_limits=policies))
    headers = issuer.bearer(["get-authors"])
    async with start_gateway_app(None, config_path=path, config_watch=0) as (app, url, _):
        stop = asyncio.Event()

        async def client() -> list[int]:
            statuses = []
            while not stop.is_set():
                statuses.append(
                    (await http.get(url + "/api/v1/authors", headers=headers)).status_code
                )
            return statuses

        clients = [asyncio.create_task(client()) for _ in range(8)]
        for i in range(20):  # every reload changes the config, so each builds a new stage
            policies = {"default": {"limit": 100_000 + i, "window": 60}, "login": generous}
            write(path, config_for(upstream.url, rate_limits=policies))
            assert app.reload()
            await asyncio.sleep(0.02)
        stop.set()
        results = [s for statuses in await asyncio.gather(*clients) for s in statuses]
    assert len(results) > 40
    assert set(results) == {200}


@pytest.mark.parametrize("name", ["authors", "my-service"])
def test_any_upstream_url_comes_from_the_environment(monkeypatch, upstream, name) -> None:
    from gatehouse.gateway import GatewaySettings, load_config
    from gatehouse.gateway.config import parse_config

    variable = f"GATEHOUSE_UPSTREAM_{name.upper().replace('-', '_')}_URL"
    monkeypatch.setenv(variable, "http://a.internal:1, http://b.internal:2/")
    data = config_for(upstream.url).model_dump(mode="json")
    data["upstreams"][name] = {"url": "http://127.0.0.1:1"}
    config = parse_config(data).with_upstream_urls(GatewaySettings().upstream_overrides())
    assert config.upstreams[name].urls == ("http://a.internal:1", "http://b.internal:2")
    monkeypatch.delenv(variable)
    monkeypatch.setenv("GATEHOUSE_UPSTREAM_NOPE_URL", "http://x:1")
    with pytest.raises(ConfigurationError, match="GATEHOUSE_UPSTREAM_NOPE_URL: no upstream"):
        load_config(None, GatewaySettings().upstream_overrides())
