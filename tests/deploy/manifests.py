"""The Kubernetes manifests as a cluster would receive them, and the rules they keep.

Rendering uses kustomize as built into kubectl (the machine images of this project
ship it from their package repository); nothing is fetched at test time. The policy
functions return one line per violation so that a test can show a mutated manifest
breaking exactly the rule it targets.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.deploy import tools

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.32.0"  # the schemas validated against (kubernetes-validate)
SECRETS_TEMPLATE = K8S / "secrets" / "gatehouse-secrets.template.yaml"
WORKLOADS = ("Deployment", "Job", "StatefulSet", "DaemonSet")
# Only these may be reached through the Ingress / scaled by an HPA.
PUBLIC = {"gateway"}
AUTOSCALED = {"gateway", "realtime"}

# What a template's <placeholder> becomes when a test needs a value of the right shape.
PLACEHOLDER = "example-0123456789abcdef0123456789"
Manifest = dict[str, Any]
Rule = Callable[[list[Manifest]], list[str]]


@cache
def _rendered(overlay: str) -> str:
    done = subprocess.run(
        [*tools.kustomize(), str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"kustomize {overlay}: {done.stderr}"
    return done.stdout


def render(overlay: str) -> list[Manifest]:
    """A fresh copy of the overlay's objects (tests may mutate it)."""
    return [doc for doc in yaml.safe_load_all(_rendered(overlay)) if doc]


def name(obj: Manifest) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def of_kind(objs: list[Manifest], *kinds: str) -> list[Manifest]:
    return [obj for obj in objs if obj["kind"] in kinds]


def pod_spec(obj: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def pod_labels(obj: Manifest) -> dict[str, str]:
    labels: dict[str, str] = obj["spec"]["template"]["metadata"].get("labels", {})
    return labels


def containers(obj: Manifest) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = pod_spec(obj)
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        yield f"{name(obj)}[{container['name']}]", container


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions In/NotIn/Exists) applied to labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


# ---------------------------------------------------------------------- rules


def non_root(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        pod = pod_spec(obj).get("securityContext", {})
        for where, container in containers(obj):
            context = {**pod, **container.get("securityContext", {})}
            if context.get("runAsNonRoot") is not True:
                found.append(f"{where}: runAsNonRoot is not true")
            if context.get("runAsUser", 1) == 0:
                found.append(f"{where}: runAsUser is 0")
    return found


def read_only_root(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        for where, container in containers(obj):
            if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
                found.append(f"{where}: readOnlyRootFilesystem is not true")
    return found


def least_privilege(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        pod = pod_spec(obj)
        pod_seccomp = pod.get("securityContext", {}).get("seccompProfile", {}).get("type")
        if pod.get("automountServiceAccountToken") is not False:
            found.append(f"{name(obj)}: automountServiceAccountToken is not false")
        for where, container in containers(obj):
            context = container.get("securityContext", {})
            if context.get("allowPrivilegeEscalation") is not False:
                found.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("capabilities", {}).get("drop") != ["ALL"]:
                found.append(f"{where}: capabilities are not all dropped")
            if context.get("capabilities", {}).get("add"):
                found.append(f"{where}: adds capabilities")
            if context.get("seccompProfile", {}).get("type", pod_seccomp) != "RuntimeDefault":
                found.append(f"{where}: seccomp profile is not RuntimeDefault")
            if context.get("privileged"):
                found.append(f"{where}: privileged")
    return found


def resource_limits(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        for where, container in containers(obj):
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(kind, {}):
                        found.append(f"{where}: no {resource} in {kind}")
    return found


def probes(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, "Deployment", "StatefulSet", "DaemonSet"):
        for where, container in containers(obj):
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                got = container.get(probe, {}).get("httpGet", {}).get("path")
                if got != path:
                    found.append(f"{where}: {probe} is not an HTTP GET of {path} (got {got})")
    return found


def graceful_shutdown(objs: list[Manifest]) -> list[str]:
    """Every Deployment waits in preStop for the endpoints to drop it, then has time to
    drain; WebSocket tiers (gateway, realtime) at least 45 s after preStop."""
    found = []
    for obj in of_kind(objs, "Deployment"):
        grace = pod_spec(obj).get("terminationGracePeriodSeconds", 30)
        for where, container in containers(obj):
            command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {})
            sleep = [int(arg) for arg in command.get("command", []) if str(arg).isdigit()]
            if not sleep:
                found.append(f"{where}: no preStop sleep")
                continue
            drain = 45 if obj["metadata"]["name"] in AUTOSCALED else 15
            if grace < sleep[0] + drain:
                found.append(
                    f"{where}: terminationGracePeriodSeconds {grace} < preStop {sleep[0]} + {drain}"
                )
    return found


def disruption_budgets(objs: list[Manifest]) -> list[str]:
    budgets = of_kind(objs, "PodDisruptionBudget")
    return [
        f"{name(obj)}: no PodDisruptionBudget selects its pods"
        for obj in of_kind(objs, "Deployment", "StatefulSet")
        if not any(selects(pdb["spec"]["selector"], pod_labels(obj)) for pdb in budgets)
    ]


def network_policies(objs: list[Manifest]) -> list[str]:
    policies = of_kind(objs, "NetworkPolicy")
    found = []
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    if not deny:
        found.append("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress)")
    for obj in of_kind(objs, *WORKLOADS):
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels(obj))
        ]
        if not own:
            found.append(f"{name(obj)}: no NetworkPolicy of its own allows its traffic")
    return found


def pinned_images(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        for where, container in containers(obj):
            image = container["image"]
            if "@sha256:" in image:
                continue
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if not tag or tag == "latest":
                found.append(f"{where}: image {image} has no pinned tag")
    return found


def secrets_stay_outside(objs: list[Manifest]) -> list[str]:
    """No Secret is rendered (they come from a secret manager); every key read exists in
    the template, so that the template tells an SRE all there is to create."""
    template = yaml.safe_load(SECRETS_TEMPLATE.read_text())
    found = [
        f"{name(obj)}: Secrets do not belong in the manifests" for obj in of_kind(objs, "Secret")
    ]
    for obj in of_kind(objs, *WORKLOADS):
        for where, container in containers(obj):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref and (
                    ref["name"] != template["metadata"]["name"]
                    or ref["key"] not in template["stringData"]
                ):
                    read = f"{ref['name']}/{ref['key']}"
                    found.append(f"{where}: {entry['name']} reads {read}, not in the template")
    return found


def exposure(objs: list[Manifest]) -> list[str]:
    found = []
    for obj in of_kind(objs, "Service"):
        if obj["spec"].get("type", "ClusterIP") != "ClusterIP":
            found.append(f"{name(obj)}: type {obj['spec']['type']} exposes it outside the cluster")
    for obj in of_kind(objs, "Ingress"):
        for rule in obj["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                service = path["backend"]["service"]["name"]
                if service not in PUBLIC:
                    found.append(f"{name(obj)}: routes to {service}, which is not public")
        annotations = obj["metadata"].get("annotations", {})
        for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
            if int(annotations.get(f"nginx.ingress.kubernetes.io/{timeout}", 60)) < 3600:
                found.append(f"{name(obj)}: {timeout} too short for WebSockets")
    return found


def autoscaling(objs: list[Manifest]) -> list[str]:
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(objs, "HorizontalPodAutoscaler")
    }
    deployments = {obj["metadata"]["name"] for obj in of_kind(objs, "Deployment")}
    found = [f"Deployment/{d}: no HorizontalPodAutoscaler" for d in sorted(AUTOSCALED - scaled)]
    found += [
        f"HorizontalPodAutoscaler for {t}: no such Deployment" for t in sorted(scaled - deployments)
    ]
    return found


def references(objs: list[Manifest]) -> list[str]:
    """Every ConfigMap a pod reads is rendered (the generators' hashed names included)."""
    config_maps = {obj["metadata"]["name"] for obj in of_kind(objs, "ConfigMap")}
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        wanted = [
            v["configMap"]["name"] for v in pod_spec(obj).get("volumes", []) if "configMap" in v
        ]
        for _, container in containers(obj):
            wanted += [
                e["configMapRef"]["name"]
                for e in container.get("envFrom", [])
                if "configMapRef" in e
            ]
            wanted += [
                e["valueFrom"]["configMapKeyRef"]["name"]
                for e in container.get("env", [])
                if "configMapKeyRef" in e.get("valueFrom", {})
            ]
        found += [
            f"{name(obj)}: ConfigMap {cm} is not rendered" for cm in wanted if cm not in config_maps
        ]
    return found


def service_links(objs: list[Manifest]) -> list[str]:
    """Kubernetes injects AUTH_PORT=tcp://..., GATEWAY_SERVICE_HOST, ... for every Service
    of the namespace unless a pod opts out: names our settings must never see."""
    return [
        f"{name(obj)}: enableServiceLinks is not false"
        for obj in of_kind(objs, *WORKLOADS)
        if pod_spec(obj).get("enableServiceLinks") is not False
    ]


def injected_service_links(objs: list[Manifest], obj: Manifest) -> dict[str, str]:
    """The variables Kubernetes would give this pod for the rendered Services (none when
    the pod sets enableServiceLinks: false), with a made-up cluster IP."""
    if pod_spec(obj).get("enableServiceLinks") is False:
        return {}
    env: dict[str, str] = {}
    for index, service in enumerate(of_kind(objs, "Service")):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        address = f"10.96.0.{10 + index}"
        env[f"{prefix}_SERVICE_HOST"] = address
        for n, port in enumerate(service["spec"]["ports"]):
            number = port["port"]
            tcp = f"{prefix}_PORT_{number}_TCP"
            env |= {tcp: f"tcp://{address}:{number}", f"{tcp}_PROTO": "tcp"}
            env |= {f"{tcp}_PORT": str(number), f"{tcp}_ADDR": address}
            if "name" in port:
                env[f"{prefix}_SERVICE_PORT_{port['name'].upper()}"] = str(number)
            if n == 0:
                env |= {
                    f"{prefix}_SERVICE_PORT": str(number),
                    f"{prefix}_PORT": f"tcp://{address}:{number}",
                }
    return env


# A variable that names a backing service -> the pods (app.kubernetes.io/name) and port
# its NetworkPolicy must let the container reach.
EGRESS_FOR = {
    "AMQP_URL": ("rabbitmq", 5672),
    "DATABASE_URL": ("postgresql", 5432),
    "GATEHOUSE_AUTH_DATABASE_URL": ("postgresql", 5432),
    "REDIS_URL": ("redis", 6379),
    "KEYCLOAK_URL": ("keycloak", 8080),
}


def _allowed_egress(objs: list[Manifest], labels: dict[str, str]) -> set[tuple[str, int]]:
    allowed = set()
    for policy in of_kind(objs, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"], labels):
            continue
        for rule in policy["spec"].get("egress", []):
            peers = [
                peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                for peer in rule.get("to", [])
            ]
            for port in rule.get("ports", []):
                allowed.update((str(peer), int(port["port"])) for peer in peers)
    return allowed


def egress_follows_environment(objs: list[Manifest]) -> list[str]:
    """A container given AMQP_URL / a database / REDIS_URL / KEYCLOAK_URL may reach it:
    a variable added without its NetworkPolicy is an outage in a default-deny namespace."""
    found = []
    for obj in of_kind(objs, *WORKLOADS):
        allowed = _allowed_egress(objs, pod_labels(obj))
        for where, container in containers(obj):
            for variable in container_environment(objs, container):
                needed = EGRESS_FOR.get(variable)
                if needed and needed not in allowed:
                    found.append(f"{where}: {variable} but no egress to {needed[0]}:{needed[1]}")
    return found


def ports(objs: list[Manifest]) -> list[str]:
    """Probes, the scrape annotation and Services name ports the containers open."""
    found = []
    for obj in of_kind(objs, "Deployment"):
        opened = {
            key: p for _, c in containers(obj) for p in c.get("ports", [])
            for key in (p["name"], p["containerPort"])
        }  # fmt: skip
        scrape = obj["spec"]["template"]["metadata"].get("annotations", {})
        if int(scrape.get("prometheus.io/port", 0)) not in opened:
            found.append(f"{name(obj)}: prometheus.io/port is not a container port")
        for where, container in containers(obj):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if port is not None and port not in opened:
                    found.append(f"{where}: {probe} on port {port}, which is not opened")
        for service in of_kind(objs, "Service"):
            if selects({"matchLabels": service["spec"]["selector"]}, pod_labels(obj)):
                for port in service["spec"]["ports"]:
                    if port["targetPort"] not in opened:
                        found.append(f"{name(service)}: targetPort {port['targetPort']} not opened")
    return found


RULES: dict[str, Rule] = {
    "non_root": non_root,
    "read_only_root": read_only_root,
    "least_privilege": least_privilege,
    "resource_limits": resource_limits,
    "probes": probes,
    "graceful_shutdown": graceful_shutdown,
    "disruption_budgets": disruption_budgets,
    "network_policies": network_policies,
    "pinned_images": pinned_images,
    "secrets_stay_outside": secrets_stay_outside,
    "exposure": exposure,
    "autoscaling": autoscaling,
    "references": references,
    "ports": ports,
    "service_links": service_links,
    "egress_follows_environment": egress_follows_environment,
}


def container_environment(objs: list[Manifest], container: dict[str, Any]) -> dict[str, str]:
    """A container's variables: envFrom ConfigMaps, then env (a secret's value is its
    template's example, which has the shape the code expects)."""
    template = yaml.safe_load(SECRETS_TEMPLATE.read_text())["stringData"]
    maps = {obj["metadata"]["name"]: obj.get("data", {}) for obj in of_kind(objs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            env[entry["name"]] = re.sub(
                r"<[^>]*>", PLACEHOLDER, template[entry["valueFrom"]["secretKeyRef"]["key"]]
            )
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = maps[ref["name"]][ref["key"]]
    return env
