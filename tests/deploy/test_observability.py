"""Alerts and the Grafana dashboard speak of metrics the services really export.

A running ``gatehouse run all`` is scraped (every service's /metrics; the gateway's on
its admin port, never on the public one); every metric name in deploy/prometheus/alerts.yml
and deploy/grafana/gatehouse.json must be in that scrape. Rules are checked for shape
and PromQL syntax (and with promtool when the machine has it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.tools import promtool
from tests.e2e.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "gatehouse.json"
OPERATIONS = ROOT / "docs" / "operations.md"
GATEHOUSE = str(Path(sys.executable).with_name("gatehouse"))
# Series Prometheus makes itself.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Promised to #9 by their owners (/work/coord/notes/deploy.md), not exported on main
# yet. Tolerated only while absent from the scrape.
PENDING: dict[str, str] = {}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
SEVERITIES = {"critical", "warning"}
# As the e2e suites: a process starved of CPU on a shared machine may take this long.
STARTUP_SECONDS = 180


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects (a ValueError when it does not parse)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            explicit = [m.value for m in node.matchers.matchers if m.name == "__name__"]
            names.update([node.name] if node.name else explicit)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


# ------------------------------------------------------------------ the scrape


def _exported(text: str) -> set[str]:
    """Series names a scrape can hold: a family with no sample yet still counts (its
    HELP/TYPE lines), with the suffixes of its type."""
    names = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
    }
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    folder = tmp_path_factory.mktemp("scrape")
    ports = {name: free_port() for name in ("GATEWAY", "AUTHORS", "REALTIME", "AUTH", "ADMIN")}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env |= {f"GATEHOUSE_{name}_PORT": str(port) for name, port in ports.items()}
    env |= {"GATEHOUSE_DATA_DIR": str(folder), "GATEHOUSE_DEMO_PASSWORD": "scrape-demo-password"}
    log = (folder / "run.log").open("wb")
    process = subprocess.Popen(
        [GATEHOUSE, "run", "all"], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield _scrape_all(process, ports, folder)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _scrape_all(process: subprocess.Popen[bytes], ports: dict[str, int], folder: Path) -> set[str]:
    url = "http://127.0.0.1:{}/metrics"
    deadline = time.monotonic() + STARTUP_SECONDS
    names: set[str] = set()
    with httpx.Client(timeout=2) as client:
        assert _wait(client, ports, process), (folder / "run.log").read_text()[-3000:]
        public = client.get(url.format(ports["GATEWAY"]))
        assert public.status_code == 404, "no /metrics on public traffic"
        for name in ("AUTH", "AUTHORS", "REALTIME", "ADMIN"):
            while True:
                assert process.poll() is None, (folder / "run.log").read_text()[-3000:]
                try:
                    response = client.get(url.format(ports[name]))
                    if response.status_code == 200:
                        names |= _exported(response.text)
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"no /metrics on {name}\n{(folder / 'run.log').read_text()[-3000:]}"
                    )
                time.sleep(0.2)
    return names


def _wait(client: httpx.Client, ports: dict[str, int], process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if client.get(f"http://127.0.0.1:{ports['GATEWAY']}/healthz").status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def _missing(names: set[str], scraped: set[str]) -> list[str]:
    missing = []
    for name in sorted(names - SYNTHETIC - scraped):
        if name not in PENDING:
            missing.append(name)
    return missing


def test_pending_metrics_are_still_pending(scraped: set[str]) -> None:
    landed = sorted(name for name in PENDING if name in scraped)
    assert landed == [], f"exported now: drop them from PENDING so that they are checked: {landed}"


def test_every_alert_speaks_of_exported_metrics(scraped: set[str]) -> None:
    used = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert _missing(used, scraped) == []


def test_every_dashboard_query_speaks_of_exported_metrics(scraped: set[str]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in dashboard_queries()))
    assert _missing(used, scraped) == []


# ------------------------------------------------------------------ shape


def _anchors() -> set[str]:
    headings = re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_alert_rules_are_well_formed() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    anchors = _anchors()
    for rule in alert_rules():
        assert re.fullmatch(r"Gatehouse[A-Z][A-Za-z0-9]+", rule["alert"])
        assert metric_names(rule["expr"]), f"{rule['alert']}: selects no metric"
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: docs/operations.md has no #{anchor}"


def test_the_alerts_of_the_issue_are_there() -> None:
    used = {rule["alert"]: metric_names(rule["expr"]) for rule in alert_rules()}
    everything = set().union(*used.values())
    for metric in (
        "gatehouse_http_requests_total",  # gateway 5xx ratio
        "gatehouse_gateway_breaker_state",
        "gatehouse_gateway_rate_limit_store_errors_total",
        "gatehouse_outbox_lag_seconds",
        "gatehouse_realtime_event_lag_seconds_bucket",
        "gatehouse_realtime_slow_consumers_dropped_total",
        "gatehouse_auth_lockouts_total",
    ):
        assert metric in everything, metric


def test_promtool_accepts_the_rules_and_their_unit_tests() -> None:
    tool = promtool()
    subprocess.run([tool, "check", "rules", str(ALERTS)], check=True, timeout=60)
    tests = ALERTS.with_name("alerts.test.yml")
    subprocess.run([tool, "test", "rules", tests.name], cwd=ALERTS.parent, check=True, timeout=120)


def test_promtool_accepts_the_prometheus_configuration(tmp_path: Path) -> None:
    config = yaml.safe_load(ALERTS.with_name("prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # where compose mounts it
    config["rule_files"] = [str(ALERTS)]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    subprocess.run([promtool(), "check", "config", str(local)], check=True, timeout=60)


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load(ALERTS.with_name("alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} == fired


def test_dashboard_is_well_formed() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "gatehouse"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for title, expr in dashboard_queries():
        assert metric_names(expr), f"{title}: {expr} selects no metric"
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
