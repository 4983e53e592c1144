"""``make k8s-check``: every overlay renders, is valid for the pinned Kubernetes version
(offline JSON schemas, strict: unknown fields fail), keeps the deployment rules, and
sets only variables the code reads and docs/configuration.md explains."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gatehouse.gateway.config import load_config
from tests.deploy import environment
from tests.deploy.manifests import (
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    RULES,
    SECRETS_TEMPLATE,
    Manifest,
    container_environment,
    containers,
    injected_service_links,
    name,
    of_kind,
    pod_spec,
    render,
)

ROOT = K8S.parents[1]


def find(objs: list[Manifest], kind: str, wanted: str) -> Manifest:
    """An object by kind and name (generated ConfigMaps by their name before the hash)."""
    for obj in objs:
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(wanted):
            return obj
    raise LookupError(f"{kind}/{wanted}")


def container(objs: list[Manifest], workload: str) -> dict[str, Any]:
    obj = find(objs, "Deployment", workload)
    first: dict[str, Any] = pod_spec(obj)["containers"][0]
    return first


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_valid_for_the_pinned_kubernetes(overlay: str) -> None:
    errors = []
    for obj in render(overlay):
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{name(obj)}: {exc.message} at {'/'.join(map(str, exc.path))}")
    assert errors == []


def test_secret_template_is_valid_and_not_rendered() -> None:
    template = yaml.safe_load(SECRETS_TEMPLATE.read_text())
    kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)
    for value in template["stringData"].values():
        assert "<" in value, f"{value!r}: a template holds placeholders, never a value"


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_keeps_the_rule(overlay: str, rule: str) -> None:
    assert RULES[rule](render(overlay)) == []


def _set(path: list[str | int], value: object) -> Callable[[Manifest], None]:
    def apply(obj: Manifest) -> None:
        target: Any = obj
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return apply


DELETE = object()
C0: list[str | int] = ["spec", "template", "spec", "containers", 0]
POD: list[str | int] = ["spec", "template", "spec"]
META: list[str | int] = ["spec", "template", "metadata"]
MUTATIONS: list[tuple[str, str, str, Callable[[Manifest], None]]] = [
    ("non_root", "Deployment", "gateway", _set([*C0, "securityContext", "runAsUser"], 0)),
    ("non_root", "Job", "migrate-authors", _set([*C0, "securityContext", "runAsNonRoot"], False)),
    (
        "read_only_root",
        "Deployment",
        "realtime",
        _set([*C0, "securityContext", "readOnlyRootFilesystem"], False),
    ),
    (
        "least_privilege",
        "Deployment",
        "auth",
        _set([*C0, "securityContext", "capabilities", "add"], ["NET_ADMIN"]),
    ),
    (
        "least_privilege",
        "Deployment",
        "authors",
        _set([*POD, "securityContext", "seccompProfile"], DELETE),
    ),
    (
        "resource_limits",
        "Deployment",
        "authors",
        _set([*C0, "resources", "limits", "memory"], DELETE),
    ),
    ("resource_limits", "Job", "migrate-authors", _set([*C0, "resources", "requests"], DELETE)),
    ("probes", "Deployment", "gateway", _set([*C0, "readinessProbe"], DELETE)),
    ("probes", "Deployment", "realtime", _set([*C0, "livenessProbe"], DELETE)),
    (
        "graceful_shutdown",
        "Deployment",
        "realtime",
        _set([*POD, "terminationGracePeriodSeconds"], 15),
    ),
    ("graceful_shutdown", "Deployment", "auth", _set([*C0, "lifecycle"], DELETE)),
    (
        "disruption_budgets",
        "PodDisruptionBudget",
        "realtime",
        _set(["spec", "selector", "matchLabels", "app.kubernetes.io/name"], "nothing"),
    ),
    (
        "network_policies",
        "NetworkPolicy",
        "gatehouse-authors",
        _set(["spec", "podSelector", "matchLabels", "app.kubernetes.io/name"], "nothing"),
    ),
    (
        "network_policies",
        "NetworkPolicy",
        "default-deny-all",
        _set(["spec", "policyTypes"], ["Ingress"]),
    ),
    (
        "pinned_images",
        "Deployment",
        "gateway",
        _set([*C0, "image"], "registry.example.com/gatehouse/gatehouse-gateway:latest"),
    ),
    ("pinned_images", "Job", "migrate-authors", _set([*C0, "image"], "gatehouse-authors")),
    (
        "secrets_stay_outside",
        "Deployment",
        "gateway",
        _set([*C0, "env", -1, "valueFrom", "secretKeyRef", "key"], "typo"),
    ),
    ("exposure", "Service", "authors", _set(["spec", "type"], "LoadBalancer")),
    (
        "exposure",
        "Ingress",
        "gateway",
        _set(["spec", "rules", 0, "http", "paths", 0, "backend", "service", "name"], "authors"),
    ),
    (
        "exposure",
        "Ingress",
        "gateway",
        _set(["metadata", "annotations", "nginx.ingress.kubernetes.io/proxy-read-timeout"], "60"),
    ),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "realtime",
        _set(["spec", "scaleTargetRef", "name"], "nothing"),
    ),
    (
        "references",
        "Deployment",
        "authors",
        _set([*C0, "envFrom", 0, "configMapRef", "name"], "gatehouse-config"),
    ),
    ("ports", "Deployment", "gateway", _set([*META, "annotations", "prometheus.io/port"], "9999")),
    ("ports", "Deployment", "realtime", _set([*C0, "readinessProbe", "httpGet", "port"], "admin")),
    ("ports", "Service", "auth", _set(["spec", "ports", 0, "targetPort"], 9999)),
    ("service_links", "Deployment", "authors", _set([*POD, "enableServiceLinks"], DELETE)),
    (
        "egress_follows_environment",
        "NetworkPolicy",
        "gatehouse-realtime",
        _set(["spec", "egress"], []),
    ),
    (
        "egress_follows_environment",
        "NetworkPolicy",
        "gatehouse-migrate-authors",
        _set(["spec", "egress", 0, "ports", 0, "port"], 5433),
    ),
    ("service_links", "Job", "migrate-authors", _set([*POD, "enableServiceLinks"], True)),
]


@pytest.mark.parametrize(
    ("rule", "kind", "target", "mutate"),
    MUTATIONS,
    ids=[f"{rule}-{kind}-{target}" for rule, kind, target, _ in MUTATIONS],
)
def test_the_rule_fails_on_a_mutated_manifest(
    rule: str, kind: str, target: str, mutate: Callable[[Manifest], None]
) -> None:
    objs = render("prod")
    assert RULES[rule](objs) == []
    mutate(find(objs, kind, target))
    assert RULES[rule](objs) != []


def test_a_rendered_secret_breaks_the_rules() -> None:
    objs = render("dev")
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "leak"},
            "stringData": {"k": "v"},
        }
    )
    assert RULES["secrets_stay_outside"](objs) == [
        "Secret/leak: Secrets do not belong in the manifests"
    ]


def _service_containers(
    overlay: str, objs: list[Manifest] | None = None
) -> list[tuple[str, list[str], dict[str, str]]]:
    """(where, args, the environment the process sees: service links, then its own)."""
    objs = objs if objs is not None else render(overlay)
    out = []
    for obj in of_kind(objs, "Deployment", "Job"):
        links = injected_service_links(objs, obj)
        for where, spec in containers(obj):
            own = container_environment(objs, spec)
            out.append((where, [str(a) for a in spec["args"]], links | own))
    return out


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_command_is_one_the_launcher_accepts(overlay: str) -> None:
    problems = [environment.command_problem(args) for _, args, _ in _service_containers(overlay)]
    assert [problem for problem in problems if problem] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_is_read_by_the_code_and_documented(overlay: str) -> None:
    found = []
    for where, args, env in _service_containers(overlay):
        service = environment.command_service(args)
        found += [f"{where}: {problem}" for problem in environment.problems(service, set(env))]
    assert found == []


def _production_problems(overlay: str, objs: list[Manifest] | None = None) -> list[str]:
    found = []
    for where, args, env in _service_containers(overlay, objs):
        service = environment.command_service(args)
        missing = environment.missing_for_production(service, args[0], env)
        found += [f"{where}: {problem}" for problem in missing]
        refusals = environment.launcher_refusals(service, args[0], env)
        found += [f"{where}: {problem}" for problem in refusals]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_what_production_requires(overlay: str) -> None:
    """Each container's settings are built from the environment its process would see,
    including the service links Kubernetes injects unless the pod opts out (with them,
    `AUTH_PORT=tcp://10.x.x.x:8003` of the Service `auth` stopped every service)."""
    assert _production_problems(overlay) == []


def test_the_gateway_configuration_loads_and_keeps_the_shipped_routes() -> None:
    shipped = load_config(None)
    deployed = load_config(K8S / "base" / "gateway-config.yaml")
    assert deployed.routes == shipped.routes
    assert {n: u.url for n, u in deployed.upstreams.items()} == {
        "authors": "http://authors:8001",
        "realtime": "http://realtime:8002",
        "auth": "http://auth:8003",
    }


def test_the_ingress_answers_with_the_gateway_limits() -> None:
    gateway = load_config(K8S / "base" / "gateway-config.yaml")
    ingress = find(render("prod"), "Ingress", "gateway")
    body = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert body == f"{gateway.limits.max_body_bytes // 1024 // 1024}m"
