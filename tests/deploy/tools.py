"""Outside tools the deployment checks use, treated like the test services: absent, a
test skips with the reason; with ``GATEHOUSE_REQUIRE_SERVICES=1`` (CI) it fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("GATEHOUSE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"GATEHOUSE_REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def kustomize() -> list[str]:
    """kustomize as built into kubectl (in this project's machine images), or standalone."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    unavailable("neither kubectl nor kustomize is installed: deploy/k8s cannot be rendered")


def promtool() -> str:
    """The promtool `make` unpacks from Debian's prometheus package, or one on PATH."""
    unpacked = ROOT / ".tools" / "prometheus" / "usr" / "bin" / "promtool"
    found = str(unpacked) if unpacked.exists() else shutil.which("promtool")
    if found:
        return found
    unavailable("promtool is missing (`make test` unpacks it from Debian's prometheus package)")
