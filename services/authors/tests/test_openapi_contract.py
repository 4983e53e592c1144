"""schemathesis against the authors app itself (issue #10): every operation, every check,
0 failures. A short budget runs in ``make test`` (tests/contract runs every phase over the
same operations through the gateway there too); ``make authors-long`` raises it
(``GATEHOUSE_SCHEMATHESIS_EXAMPLES``, ``GATEHOUSE_SCHEMATHESIS_PHASES``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import serve

Auth = Callable[..., dict[str, str]]
EXAMPLES = os.environ.get("GATEHOUSE_SCHEMATHESIS_EXAMPLES", "3")
# make test: examples and fuzzing; the coverage and stateful phases (minutes) with
# GATEHOUSE_SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful (make contract).
PHASES = os.environ.get("GATEHOUSE_SCHEMATHESIS_PHASES", "examples,fuzzing")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
HOOKS = Path(__file__).parents[3] / "tests/contract/schemathesis_hooks.py"


@pytest.fixture
def database_url(sqlite_url: str) -> str:  # SQLite: the HTTP contract is the same on both
    return sqlite_url


@pytest.mark.timeout(600)
async def test_schemathesis_finds_nothing(
    settings: AuthorsSettings, verifier: JWTVerifier, auth: Auth, tmp_path: Path
) -> None:
    app = create_app(settings, verifier=verifier)
    async with serve(app) as url:
        result = await asyncio.to_thread(_run, url, auth("admin")["Authorization"], tmp_path)

    assert result.returncode == 0, result.stdout[-20000:]


def _run(url: str, bearer: str, folder: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: {bearer}",
        "--checks",
        "all",
        "--max-examples",
        EXAMPLES,
        "--phases",
        PHASES,
        "--seed",
        "7",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
        "--report-dir",
        str(folder),
    ]
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "SCHEMATHESIS_HOOKS": str(HOOKS),
    }
    return subprocess.run(  # in the test's folder: schemathesis keeps a cache in its cwd
        command, capture_output=True, text=True, env=env, timeout=540, check=False, cwd=folder
    )
