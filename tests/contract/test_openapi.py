"""schemathesis over the API as a client sees it: the gateway and its merged OpenAPI.

Every operation, as every demo identity and anonymously, through all of
schemathesis' phases (explicit examples, coverage of the schema's edges, fuzzing,
and stateful sequences that follow the links between operations, e.g. create then
read). Every check runs; a run passes with 0 failures of any of them.

Budget: ``make test`` runs a fixed seed with a few examples per operation, as admin,
``nobody`` and anonymously (about 80 s on a loaded 2-core machine); ``make contract``
(``GATEHOUSE_CONTRACT=full``) a random seed with many more, as every identity.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import IDENTITIES, System, contract_scale
from .openapi import gateway_document

pytestmark = [pytest.mark.e2e, pytest.mark.services]

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
# Values a schema cannot describe (fresh Idempotency-Keys, If-Match: *, ISBN check digits).
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# make test: a fixed seed, every phase as admin (who reaches every operation), and a
# few fuzzed requests per operation as `nobody` (every 403) and anonymously (every 401).
# The partial roles of editor, viewer and auditor decide only which of those answers
# comes back, which gateway/tests/test_rbac_matrix.py checks route by route; they run
# under make contract: a random seed, every phase for everyone.
IDENTITIES_OF = {"short": ("admin", "nobody", "anonymous"), "full": (*IDENTITIES, "anonymous")}
SHORT = ["--seed", "20261127"]
BUDGETS = {
    ("short", "admin"): [*SHORT, "--max-examples", "10"],
    ("short", "other"): [*SHORT, "--max-examples", "5", "--phases", "examples,fuzzing"],
    ("full", "admin"): ["--max-examples", "300"],
    ("full", "other"): ["--max-examples", "100"],
}
# (operation, check) pairs that fail on main today, each until the named engineer's fix
# lands (the commit adding a line says what fails). A fix removes its line; every other
# check runs on every operation.
WAITING_FOR: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Run:
    identity: str
    process: subprocess.CompletedProcess[str]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def prepared(system: System, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The OpenAPI document the gateway serves, and the schemathesis.toml of this suite."""
    folder = tmp_path_factory.mktemp("schemathesis")
    openapi = folder / "openapi.json"
    openapi.write_text(json.dumps(gateway_document(system.gateway)))
    config = folder / "schemathesis.toml"
    config.write_text(_config())
    return openapi, config


def schemathesis(system: System, prepared: tuple[Path, Path], identity: str, folder: Path) -> Run:
    openapi, config = prepared
    report = folder / "report.json"
    token = system.token(identity) if identity != "anonymous" else None
    header = [f"--header=Authorization: Bearer {token}"] if token else []
    budget = BUDGETS[contract_scale(), "admin" if identity == "admin" else "other"]
    args = [
        *(SCHEMATHESIS, "--config-file", str(config), "run", str(openapi)),
        *("--url", system.gateway, *header, *budget),  # every check is on by default
        *("--workers", "1", "--no-color", "--report", "json"),
        *("--report-json-path", str(report)),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    process = subprocess.run(
        args, capture_output=True, text=True, timeout=1200, cwd=folder, env=env
    )
    return Run(identity, process, json.loads(report.read_text()))


def _config() -> str:
    """schemathesis.toml turning off only the (operation, check) pairs of WAITING_FOR."""
    blocks = [
        f'[[operations]]\ninclude-name = "{operation}"\nchecks.{check}.enabled = false\n'
        for operation, check in WAITING_FOR
    ]
    return "\n".join(blocks)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("identity", IDENTITIES_OF[contract_scale()])
def test_the_gateway_keeps_its_openapi_contract(
    system: System, prepared: tuple[Path, Path], identity: str, tmp_path: Path
) -> None:
    run = schemathesis(system, prepared, identity, tmp_path)
    assert not run.summary["failures"], _explain(run)
    assert run.process.returncode == 0, _explain(run)
    _assert_everything_ran(run.summary)


def _assert_everything_ran(summary: dict[str, Any]) -> None:
    operations = summary["operations"]
    assert operations["tested"] == operations["total"] > 0, operations
    phases = {name: phase["status"] for name, phase in summary["phases"].items()}
    ran = {name for name, status in phases.items() if status != "skip"}
    assert "fuzzing" in ran, phases
    if "stateful" in ran:
        assert phases["stateful"] == "success", f"stateful sequences did not run: {phases}"
    assert summary["test_cases"]["errored"] == 0, summary["test_cases"]


def _explain(run: Run) -> str:
    failures = [
        f"{f['code']} {f['title']} x{f['count']}: {', '.join(f['operations'])}"
        for f in run.summary["failures"]
    ]
    found = "\n  ".join(failures)
    output = f"{run.process.stdout[-12000:]}\n{run.process.stderr[-2000:]}"
    return f"schemathesis as {run.identity} found:\n  {found}\n\n{output}"
