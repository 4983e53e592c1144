"""``make compose-check``: docker-compose.yml against the Compose Specification and the
code, without a Docker engine. The stack it describes runs for real, as processes, in
tests/e2e/test_split.py."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
GATEHOUSE_IMAGE = re.compile(r"^gatehouse-(gateway|authors|realtime|auth):")
PUBLISHED = {"gateway", "grafana"}
# Files other engineers own that compose mounts, while they are not on main yet.
PENDING_FILES: dict[str, str] = {}
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in given:
            return given[name]
        if kind == "-":
            return rest
        raise KeyError(f"{name} is required: {rest}")

    return _VARIABLE.sub(one, value).replace("$$", "$")


# What `make up` writes into .env: a value for every variable compose requires.
DOT_ENV = {
    name: f"generated-{name.lower().replace('_', '-')}"
    for name in re.findall(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text())
}


def gatehouse_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if GATEHOUSE_IMAGE.match(str(service.get("image", "")))
    }


def command_of(service: dict[str, Any]) -> list[str]:
    """What the container runs: its command, or the image's default ``run <service>``."""
    if "command" in service:
        return [str(part) for part in service["command"]]
    image = GATEHOUSE_IMAGE.match(service["image"])
    assert image
    return ["run", image.group(1)]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "environment as a mapping, so anchors can merge"
    return {name: interpolate(str(value), DOT_ENV) for name, value in raw.items()}


def test_compose_file_follows_the_compose_specification() -> None:
    schema_text = (
        resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    ).read_text()
    validator = jsonschema.Draft7Validator(json.loads(schema_text))
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(compose())
    ]
    assert errors == []


def test_the_stack_has_every_piece_of_the_split_mode() -> None:
    services = compose()["services"]
    expected = {
        "postgres",
        "redis",
        "rabbitmq",
        "keycloak",
        "migrate-authors",
        "gateway",
        "authors",
        "relay",
        "realtime",
        "auth",
        "prometheus",
        "grafana",
        "otel-collector",
    }
    assert expected <= set(services)
    commands = {name: command_of(s) for name, s in gatehouse_services().items()}
    assert commands["relay"] == ["run", "relay"]
    assert commands["migrate-authors"] == ["migrate", "authors"]
    assert commands["gateway"] == ["run", "gateway"]


def test_every_command_is_one_the_launcher_accepts() -> None:
    problems = [environment.command_problem(command_of(s)) for s in gatehouse_services().values()]
    assert [problem for problem in problems if problem] == []


@pytest.mark.parametrize("name", sorted(gatehouse_services()))
def test_every_variable_is_read_by_the_code_and_documented(name: str) -> None:
    service = gatehouse_services()[name]
    command = command_of(service)
    env = environment_of(service)
    assert environment.problems(environment.command_service(command), set(env)) == []


@pytest.mark.parametrize("name", sorted(gatehouse_services()))
def test_every_service_has_what_production_requires(name: str) -> None:
    service = gatehouse_services()[name]
    command = command_of(service)
    target = environment.command_service(command)
    env = environment_of(service)
    assert environment.missing_for_production(target, command[0], env) == []
    assert environment.launcher_refusals(target, command[0], env) == []


def test_only_the_gateway_and_grafana_are_published() -> None:
    published = {name for name, s in compose()["services"].items() if s.get("ports")}
    assert published == PUBLISHED
    for name in PUBLISHED:
        for port in compose()["services"][name]["ports"]:
            # loopback unless the operator says otherwise
            assert str(port).startswith("${GATEHOUSE_PUBLISH_ADDRESS:-127.0.0.1}:"), port


def test_depends_on_waits_for_health_or_completion() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            condition = rule["condition"]
            target = services[dependency]
            if condition == "service_healthy":
                assert _has_healthcheck(target), f"{name} waits for {dependency}'s health"
            elif condition == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dependency} is a one-shot"
            else:
                assert dependency == "otel-collector", f"{name} must wait for {dependency}"


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable", False)
    # Our images declare HEALTHCHECK in the Dockerfile.
    return bool(GATEHOUSE_IMAGE.match(str(service.get("image", ""))))


def test_gatehouse_containers_are_locked_down() -> None:
    for name, service in gatehouse_services().items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        tmpfs = [str(mount).split(":")[0] for mount in service.get("tmpfs", [])]
        assert tmpfs == ["/tmp"], f"{name}: /tmp is the only writable place"  # noqa: S108
        assert "user" not in service, f"{name}: the image's non-root user"


def test_images_are_pinned_and_mounted_files_exist() -> None:
    for name, service in compose()["services"].items():
        image = interpolate(str(service["image"]), DOT_ENV)
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag not in ("", "latest"), f"{name}: {image} needs a pinned tag"
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not (
                source in PENDING_FILES and not (ROOT / source).exists()
            ):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"


def test_pending_files_are_still_missing() -> None:
    landed = [source for source in PENDING_FILES if (ROOT / source).exists()]
    assert landed == [], f"on main now: drop them from PENDING_FILES so they are checked: {landed}"


def test_no_secret_is_written_in_the_file() -> None:
    for name, service in compose()["services"].items():
        for variable, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|PASSPHRASE", variable):
                assert str(value).startswith("${"), f"{name}: {variable} must come from .env"
        for variable, value in service.get("environment", {}).items():
            assert not re.search(r"://[^:/]+:[^$@]+@", str(value)), f"{name}: {variable}"


def test_prometheus_scrapes_every_service_where_it_serves_metrics() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    services = gatehouse_services()
    for service in ("gateway", "authors", "realtime", "auth"):
        host, port = targets[f"gatehouse-{service}"].split(":")
        assert host == service
        env = environment_of(services[service])
        # /metrics: the gateway's admin port, the others' own port (CONTRACTS).
        variable = (
            "GATEHOUSE_ADMIN_PORT" if service == "gateway" else f"GATEHOUSE_{service.upper()}_PORT"
        )
        assert env[variable] == port, f"{service}: scraped on {port}, serves on {env[variable]}"
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
