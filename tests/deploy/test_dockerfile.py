"""The Dockerfile and its build context, checked without a Docker engine: the rules of
the final image, what the context sends, and the install recipe run for real with uv."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.docker_context import ROOT, context_files, is_sent

DOCKERFILE = ROOT / "Dockerfile"
SERVICES = ("gateway", "authors", "realtime", "auth")
UV = ROOT / ".tools" / "bin" / "uv"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users == ["10001:10001"]


def test_the_final_stage_has_no_build_tools() -> None:
    for keyword, args in final_stage():
        if keyword == "RUN":
            assert not re.search(r"\b(pip|uv) install|apt-get install|\bgcc\b", args), args
            assert "pip uninstall" in args, "pip, setuptools and wheel leave the final image"
        if keyword == "COPY" and "--from=build" in args:
            assert args.split()[-2:] == ["/opt/gatehouse", "/opt/gatehouse"], args


def test_health_entry_point_and_labels() -> None:
    final = dict(final_stage()[1:])
    assert "/healthz" in (ROOT / "deploy/docker/healthcheck.py").read_text()
    assert "healthcheck.py" in final["HEALTHCHECK"]
    assert final["ENTRYPOINT"] == '["/usr/local/bin/gatehouse-entrypoint"]'
    labels = " ".join(args for keyword, args in final_stage() if keyword == "LABEL")
    for label in ("title", "description", "version", "revision", "created", "source"):
        assert f"org.opencontainers.image.{label}=" in labels
    env = " ".join(args for keyword, args in final_stage() if keyword == "ENV")
    assert "GATEHOUSE_DATA_DIR=/tmp/gatehouse" in env, "the data folder is on the writable /tmp"
    assert "PYTHONDONTWRITEBYTECODE=1" in env, "a read-only root: no .pyc written at run time"


def test_base_images_are_pinned() -> None:
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    for keyword, image in instructions():
        if keyword == "FROM":
            reference = image.split()[0]
            reference = args.get(reference.strip("${}"), reference)
            assert re.fullmatch(r"[\w./-]+:\d[\w.-]*(@sha256:[0-9a-f]{64})?", reference), reference


def test_dependencies_come_from_the_frozen_lock() -> None:
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert runs.count("uv sync --frozen --no-dev") >= 2
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {package["name"] for package in lock["package"]}
    assert {f"gatehouse-{service}" for service in SERVICES} <= packages


def test_every_copied_file_is_in_the_build_context() -> None:
    sent = set(context_files())
    for keyword, args in instructions():
        if keyword != "COPY" or "--from=" in args:
            continue
        *sources, _ = [part for part in shlex.split(args) if not part.startswith("--")]
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"COPY {source}: no such file"
            if (ROOT / path).is_file():
                assert path in sent, f"COPY {source}: excluded by .dockerignore"
            else:
                assert any(f.startswith(path + "/") for f in sent), f"COPY {source}: empty"


def test_the_build_context_leaves_out_secrets_state_and_tests() -> None:
    for path in (".env", ".data/auth.db", "key.pem", "gateway/tests/test_proxy.py", ".venv/x"):
        assert not is_sent(path), path
    for path in context_files():
        assert not re.search(r"(^|/)(tests|\.data|\.venv)/|\.pem$|\.env$|\.db$", path), path


@pytest.mark.parametrize(("env", "url"), [
    ({"GATEHOUSE_SERVICE": "gateway"}, "http://127.0.0.1:8000/healthz"),
    ({"GATEHOUSE_SERVICE": "authors", "GATEHOUSE_AUTHORS_PORT": "9101"}, "http://127.0.0.1:9101/healthz"),
    ({"GATEHOUSE_SERVICE": "all"}, "http://127.0.0.1:8000/healthz"),
    ({"GATEHOUSE_SERVICE": "auth", "GATEHOUSE_HEALTHCHECK_URL": "http://x:1/healthz"}, "http://x:1/healthz"),
])  # fmt: skip
def test_the_healthcheck_asks_the_service_it_runs(env: dict[str, str], url: str) -> None:
    script = "import runpy; print(runpy.run_path('deploy/docker/healthcheck.py')['health_url']())"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=clean | env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.stdout.strip() == url, done.stderr


def test_the_entrypoint_runs_the_service_or_the_given_command(tmp_path: Path) -> None:
    fake = tmp_path / "gatehouse"
    fake.write_text('#!/bin/sh\necho "gatehouse $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "GATEHOUSE_SERVICE": "realtime"}
    entrypoint = str(ROOT / "deploy/docker/entrypoint.sh")

    def run(*args: str) -> str:
        done = subprocess.run(["sh", entrypoint, *args], env=env, capture_output=True, text=True)
        return done.stdout.strip()

    assert run() == "gatehouse run realtime"
    assert run("migrate", "authors") == "gatehouse migrate authors"


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make install`")
def test_the_recipe_installs_one_service_from_the_lock(tmp_path: Path) -> None:
    """The build stage's commands, run on a copy of the build context: the gateway and
    the launcher install from the frozen lock, without the other services."""
    context = tmp_path / "context"
    for path in context_files():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, context / path)
    venv = tmp_path / "venv"
    env = os.environ | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    recipe = [
        "sync --frozen --no-dev --no-install-workspace --package gatehouse-gateway",
        "sync --frozen --no-dev --no-editable --package gatehouse-gateway",
        f"pip install --python {venv}/bin/python --no-deps --no-cache --compile-bytecode .",
    ]
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    for command in recipe:
        in_dockerfile = command.replace("gatehouse-gateway", '"$package"').replace(
            str(venv), "/opt/gatehouse"
        )
        assert f"uv {in_dockerfile}" in runs, in_dockerfile
        subprocess.run(
            [str(UV), "-q", *command.split(), "--python", sys.executable]
            if command.startswith("sync")
            else [str(UV), "-q", *command.split()],
            cwd=context, env=env, check=True, timeout=300,
        )  # fmt: skip
    installed = subprocess.run(
        [str(venv / "bin/python"), "-c", "import gatehouse.gateway, gatehouse.cli.main"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    # The command line of every image must work without the other services installed.
    for args in (["--help"], ["run", "--help"], ["migrate", "--help"]):
        done = subprocess.run(
            [str(venv / "bin/gatehouse"), *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"gatehouse {' '.join(args)}: {done.stderr}"
    others = subprocess.run(
        [str(venv / "bin/python"), "-c", "import gatehouse.authors"], check=False
    )
    assert others.returncode != 0, "the gateway image carries no other service"
