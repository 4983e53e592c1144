"""deploy/keycloak/realm.json against what the rest of the deployment expects of it.

docker-compose.yml imports it into Keycloak (``start --import-realm``) and passes the
secrets as environment variables for Keycloak's ``${VAR}`` placeholders; the services
verify tokens for the audience ``gatehouse`` and read the roles of DESIGN §12 from
``realm_access`` or the client's ``resource_access``; the demo identities of DESIGN §13
hold the same roles in Keycloak as in the embedded issuer.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gatehouse.common.identity import (
    ALL_ROLES,
    CREATE_AUTHOR,
    DELETE_AUTHOR,
    GET_AUTHORS,
    UPDATE_AUTHOR,
    VIEW_AUDIT_LOGS,
)
from gatehouse.common.settings import DEFAULT_CLIENT_ID

from .test_compose import PENDING_FILES, ROOT, compose

REALM = ROOT / "deploy" / "keycloak" / "realm.json"
DEMO = {  # DESIGN §13
    "admin": set(ALL_ROLES),
    "editor": {GET_AUTHORS, CREATE_AUTHOR, UPDATE_AUTHOR, DELETE_AUTHOR},
    "viewer": {GET_AUTHORS},
    "auditor": {VIEW_AUDIT_LOGS},
    "nobody": set(),
}
_PLACEHOLDER = re.compile(r"^\$\{([A-Z0-9_]+)(:[^}]*)?\}$")

pytestmark = pytest.mark.skipif(
    not REALM.exists() and f"./{REALM.relative_to(ROOT)}" in PENDING_FILES,
    reason=f"{REALM.relative_to(ROOT)} is not on main yet (auth #11)",
)


def realm() -> dict[str, Any]:
    document = json.loads(REALM.read_text())
    assert isinstance(document, dict)
    return document


def client() -> dict[str, Any]:
    clients = [c for c in realm().get("clients", []) if c.get("clientId") == DEFAULT_CLIENT_ID]
    assert len(clients) == 1, f"one client {DEFAULT_CLIENT_ID!r} (GATEHOUSE_AUTH_CLIENT_ID)"
    return dict(clients[0])


def placeholders(value: Any) -> set[str]:
    """The ``${VAR}`` placeholders anywhere in ``value``."""
    text = json.dumps(value)
    return set(re.findall(r"\$\{([A-Z0-9_]+)(?::[^}]*)?\}", text))


def test_the_realm_is_the_one_the_services_are_configured_for() -> None:
    assert realm()["realm"] == "gatehouse"
    assert realm().get("enabled", True) is True
    issuer = compose()["x-gatehouse-environment"]["OIDC_ISSUER"]
    assert issuer.endswith("/realms/gatehouse"), issuer


def test_the_client_is_confidential_with_the_grants_auth_uses() -> None:
    gatehouse = client()
    assert gatehouse.get("publicClient") is False
    assert gatehouse.get("directAccessGrantsEnabled") is True, "POST /auth/token: password grant"
    assert gatehouse.get("serviceAccountsEnabled") is True, "client credentials"
    secret = str(gatehouse.get("secret", ""))
    placeholder = _PLACEHOLDER.match(secret)
    assert placeholder, "the client secret comes from the environment, not the file"
    assert placeholder[1] == "GATEHOUSE_AUTH_CLIENT_SECRET"


def test_access_tokens_carry_the_audience_the_services_check() -> None:
    mappers = [*client().get("protocolMappers", [])]
    for scope in realm().get("clientScopes", []):
        if scope.get("name") in client().get("defaultClientScopes", []):
            mappers += scope.get("protocolMappers", [])
    audiences = [
        m["config"].get("included.client.audience") or m["config"].get("included.custom.audience")
        for m in mappers
        if m.get("protocolMapper") == "oidc-audience-mapper"
        and str(m.get("config", {}).get("access.token.claim", "true")) == "true"
    ]
    assert DEFAULT_CLIENT_ID in audiences, "OIDC_AUDIENCE (gatehouse) must be in the access token"


def _roles(user: dict[str, Any]) -> set[str]:
    client_roles = user.get("clientRoles", {}).get(DEFAULT_CLIENT_ID, [])
    return set(user.get("realmRoles", [])) | set(client_roles)


def test_the_roles_of_the_template_exist() -> None:
    defined = {r["name"] for r in realm().get("roles", {}).get("realm", [])}
    defined |= {r["name"] for r in realm().get("roles", {}).get("client", {}).get("gatehouse", [])}
    assert set(ALL_ROLES) <= defined


def test_the_demo_identities_hold_the_roles_of_the_design() -> None:
    users = {u["username"]: u for u in realm().get("users", []) if u["username"] in DEMO}
    assert set(users) == set(DEMO)
    for name, roles in DEMO.items():
        held = _roles(users[name]) & set(ALL_ROLES)
        assert held == roles or (name == "admin" and "admin" in held), (name, held)


def test_no_secret_is_written_in_the_file() -> None:
    for user in realm().get("users", []):
        for credential in user.get("credentials", []):
            value = str(credential.get("value", ""))
            assert _PLACEHOLDER.match(value), f"{user['username']}: a literal password"
            assert not credential.get("hashedSaltedValue"), user["username"]


def test_every_placeholder_is_given_to_keycloak_by_compose() -> None:
    keycloak = compose()["services"]["keycloak"]
    given = set(keycloak.get("environment", {}))
    assert placeholders(realm()) <= given, placeholders(realm()) - given
