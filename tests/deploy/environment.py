"""What each service reads from its environment, and what docs/configuration.md documents.

The settings classes are the truth of what the code reads (their validation aliases);
a deployment that sets anything else sets it for nothing, and a variable the docs do
not name is one an SRE cannot look up.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from gatehouse.auth.settings import AuthSettings
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.gateway.settings import GatewaySettings
from gatehouse.realtime.settings import RealtimeSettings

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"

# `gatehouse run <mode>` / `gatehouse migrate <service>` -> the settings it reads.
SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "authors": AuthorsSettings,
    "relay": AuthorsSettings,
    "realtime": RealtimeSettings,
    "auth": AuthSettings,
}
# Read by the OpenTelemetry SDK rather than by our settings; allowed where documented.
SDK_PREFIXES = ("OTEL_",)
_NAME = re.compile(r"`(\.\.\.)?(_?[A-Z][A-Z0-9_]*)`")


def command_service(args: list[str]) -> str:
    """``["run", "gateway"]`` or ``["migrate", "authors"]`` -> the service whose settings apply."""
    if len(args) < 2 or args[0] not in ("run", "migrate"):
        raise ValueError(f"not a gatehouse service command: {args}")
    return args[1]


def command_problem(args: list[str]) -> str | None:
    """Why ``gatehouse <args>`` would not start (None: the launcher's parser accepts it)."""
    import contextlib
    import io

    from gatehouse.cli.main import build_parser

    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser().parse_args(args)
    except SystemExit:
        return f"gatehouse {' '.join(args)}: {errors.getvalue().strip().splitlines()[-1]}"
    return None


def _aliases(alias: object) -> list[str]:
    if isinstance(alias, str):
        return [alias]
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    return []


@cache
def read_variables(service: str) -> frozenset[str]:
    """Every variable the service's settings read (upper case)."""
    settings = SETTINGS[service]
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        aliases = _aliases(field.validation_alias)
        names.update(alias.upper() for alias in aliases or [prefix + name])
    return frozenset(names)


@cache
def documented_variables() -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    """Full names in docs/configuration.md, and the abbreviated ones of a table row as
    (first full name of the row, suffix): ``GATEHOUSE_X_RATE`` / ``_BURST``."""
    full: set[str] = set()
    short: set[tuple[str, str]] = set()
    for line in CONFIGURATION.read_text().splitlines():
        first = None
        for dots, name in _NAME.findall(line):
            if not dots and not name.startswith("_"):
                full.add(name)
                first = first or name
            elif first:
                short.add((first, name))
    return frozenset(full), frozenset(short)


def is_documented(variable: str) -> bool:
    full, short = documented_variables()
    if variable in full:
        return True
    for first, suffix in short:
        family = "_".join(first.split("_")[:2]) + "_"  # GATEHOUSE_REALTIME_
        if variable.startswith(family) and variable.endswith(suffix):
            return True
    return False


def problems(service: str, variables: set[str]) -> list[str]:
    """Why a container of ``service`` setting ``variables`` is wrong (empty: fine)."""
    read = read_variables(service)
    found = []
    for variable in sorted(variables):
        sdk = variable.startswith(SDK_PREFIXES)
        if not sdk and variable not in read:
            found.append(f"{variable}: not read by the {service} service")
        if not is_documented(variable):
            found.append(f"{variable}: not in docs/configuration.md")
    return found


# What the production profile needs of each service (CONTRACTS "Profiles"): a variable,
# or alternatives of which one must be set. The kit's own check runs too where it exists.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "gateway": [("OIDC_ISSUER",), ("REDIS_URL", "GATEHOUSE_RATE_LIMIT_STORE")],
    "authors": [("OIDC_ISSUER",), ("DATABASE_URL",), ("AMQP_URL",)],
    "relay": [("DATABASE_URL",), ("AMQP_URL",)],
    "realtime": [("OIDC_ISSUER",), ("AMQP_URL",)],
    "auth": [("KEYCLOAK_URL", "GATEHOUSE_AUTH_EMBEDDED_ISSUER")],
}
EMBEDDED_ISSUER_NEEDS = ("GATEHOUSE_AUTH_KEY_PASSPHRASE", "GATEHOUSE_AUTH_DATABASE_URL")
EVERY_SERVICE = {"GATEHOUSE_PROFILE": "production", "GATEHOUSE_HOST": "0.0.0.0"}


def missing_for_production(service: str, command: str, env: dict[str, str]) -> list[str]:
    """What a production container of ``service`` lacks (``command`` is run or migrate)."""
    found = [
        f"{name} must be {value!r} (is {env.get(name)!r})"
        for name, value in EVERY_SERVICE.items()
        if env.get(name) != value and not (command == "migrate" and name == "GATEHOUSE_HOST")
    ]
    required = REQUIRED[service] if command == "run" else [_database(service)]
    for alternatives in required:
        if not any(env.get(name) for name in alternatives):
            found.append(f"{' or '.join(alternatives)} must be set")
    if service == "auth" and env.get("GATEHOUSE_AUTH_EMBEDDED_ISSUER", "").lower() == "true":
        found += [f"{name} must be set" for name in EMBEDDED_ISSUER_NEEDS if not env.get(name)]
    for name, value in env.items():
        if name.endswith("DATABASE_URL") and value and not value.startswith("postgresql"):
            found.append(f"{name} must be PostgreSQL in production, not {value.split(':')[0]}")
    return found


def _database(service: str) -> tuple[str, ...]:
    return ("GATEHOUSE_AUTH_DATABASE_URL",) if service == "auth" else ("DATABASE_URL",)


def build_settings(service: str, env: dict[str, str]) -> BaseSettings:
    """The service's settings as its container builds them: from exactly ``env`` as the
    process environment. A value the settings refuse raises, naming the variable."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return SETTINGS[service]()


def launcher_refusals(service: str, command: str, env: dict[str, str]) -> list[str]:
    """What the launcher itself would refuse: a value the settings reject (one line naming
    the variable), or, for `run` in the production profile, the settings' own
    ``production_problems()`` (the kit's check of the defaults of one machine)."""
    try:
        settings = build_settings(service, env)
    except ValueError as exc:  # pydantic's ValidationError
        return [str(exc)]
    problems = getattr(settings, "production_problems", None)
    if command == "run" and env.get("GATEHOUSE_PROFILE") == "production" and problems:
        return list(problems())
    return []
