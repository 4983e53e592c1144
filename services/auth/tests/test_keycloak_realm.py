"""The Keycloak adapter sends the same requests to the embedded issuer as to a server
of the shape of ``deploy/keycloak/realm.json``, configured as docker-compose configures
the auth service: switching from the embedded issuer to Keycloak changes no request.

Each side is an issuer behind an in-process HTTP recorder. The "realm" side takes its
realm name, client, secret and token lifetimes from realm.json, and the adapter's
settings from the auth service's environment in docker-compose.yml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml
from fastapi import FastAPI

from gatehouse.auth import AuthSettings, KeycloakProvider, create_app
from gatehouse.common.errors import Unauthorized
from gatehouse.common.types import Message, Receive, Scope, Send
from gatehouse.testing import bind_loopback, serve

from .conftest import DEMO_PASSWORD, FAST_HASHER, auth_settings

ROOT = Path(__file__).parents[3]
REALM = json.loads((ROOT / "deploy/keycloak/realm.json").read_text())
COMPOSE_AUTH = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["auth"]
SECRET = "the value compose gives GATEHOUSE_AUTH_CLIENT_SECRET"
# The form fields whose values must agree; the others (tokens, passwords) only by name.
COMPARED = ("grant_type", "client_id", "scope")

Request = tuple[str, str, tuple[tuple[str, str], ...]]


class Recorder:
    """Pure ASGI: notes each HTTP request (method, path, form), then passes it on."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.requests: list[Request] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        form = parse_qsl(body.decode()) if body else []
        fields = tuple(sorted((k, v if k in COMPARED else "*") for k, v in form))
        self.requests.append((scope["method"], scope["path"], fields))

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def realm_client() -> dict[str, Any]:
    (client,) = [
        c
        for c in REALM["clients"]
        if c["clientId"] == COMPOSE_AUTH["environment"]["GATEHOUSE_AUTH_CLIENT_ID"]
    ]
    return dict(client)


def compose_value(name: str) -> str:
    """The auth service's variable in docker-compose.yml, its ``${...}`` resolved for the test."""
    value = str(COMPOSE_AUTH["environment"][name])
    return SECRET if re.fullmatch(r"\$\{GATEHOUSE_AUTH_CLIENT_SECRET[^}]*\}", value) else value


def embedded_issuer_settings(folder: Path, port: int) -> AuthSettings:
    """The embedded issuer's defaults, with a client secret as Keycloak's client has."""
    return auth_settings(folder, GATEHOUSE_AUTH_PORT=port, GATEHOUSE_AUTH_CLIENT_SECRET=SECRET)


def realm_issuer_settings(folder: Path, port: int) -> AuthSettings:
    """An issuer of realm.json's shape: its realm, client, secret and lifetimes."""
    secret = realm_client()["secret"]
    assert secret == "${GATEHOUSE_AUTH_CLIENT_SECRET}"
    return auth_settings(
        folder,
        GATEHOUSE_AUTH_PORT=port,
        GATEHOUSE_AUTH_REALM=REALM["realm"],
        GATEHOUSE_AUTH_CLIENT_ID=realm_client()["clientId"],
        GATEHOUSE_AUTH_CLIENT_SECRET=SECRET,
        GATEHOUSE_AUTH_ACCESS_TTL=REALM["accessTokenLifespan"],
        GATEHOUSE_AUTH_REFRESH_TTL=REALM["ssoSessionIdleTimeout"],
        GATEHOUSE_AUTH_SESSION_MAX_TTL=REALM["ssoSessionMaxLifespan"],
    )


async def flow(provider: KeycloakProvider) -> list[str]:
    """What /auth/* makes the adapter do; the roles it read for editor."""
    await provider.start()
    try:
        assert await provider.ready()
        with pytest.raises(Unauthorized):
            await provider.login("editor", "not the password")
        tokens = await provider.login("editor", DEMO_PASSWORD)
        roles = list((await provider.userinfo(tokens.access_token)).roles)
        rotated = await provider.refresh(tokens.refresh_token)
        await provider.logout(rotated.refresh_token)
        return roles
    finally:
        await provider.close()


async def run_side(
    issuer: Callable[[int], AuthSettings], adapter_env: dict[str, str]
) -> tuple[list[Request], list[str]]:
    """Serve ``issuer(port)`` behind a recorder; run the adapter configured by ``adapter_env``."""
    sock = bind_loopback()
    recorder = Recorder(create_app(issuer(sock.getsockname()[1]), password_hasher=FAST_HASHER))
    async with serve(recorder, sock=sock) as url:
        adapter = AuthSettings.model_validate({**adapter_env, "KEYCLOAK_URL": url})
        roles = await flow(KeycloakProvider.from_settings(adapter))
    return recorder.requests, roles


async def test_the_adapter_asks_the_embedded_issuer_as_it_asks_the_realm(tmp_path: Path) -> None:
    compose_env = (
        "GATEHOUSE_AUTH_REALM",
        "GATEHOUSE_AUTH_CLIENT_ID",
        "GATEHOUSE_AUTH_CLIENT_SECRET",
    )
    asked_embedded, embedded_roles = await run_side(
        lambda port: embedded_issuer_settings(tmp_path / "embedded", port),
        {"GATEHOUSE_AUTH_CLIENT_SECRET": SECRET},
    )
    asked_realm, realm_roles = await run_side(
        lambda port: realm_issuer_settings(tmp_path / "realm", port),
        {name: compose_value(name) for name in compose_env},
    )

    assert asked_realm == asked_embedded
    paths = {path for _, path, _ in asked_realm}
    assert "/realms/gatehouse/protocol/openid-connect/token" in paths
    assert "/realms/gatehouse/protocol/openid-connect/certs" in paths
    (editor,) = [u for u in REALM["users"] if u["username"] == "editor"]
    assert sorted(realm_roles) == sorted(embedded_roles) == sorted(editor["realmRoles"])
