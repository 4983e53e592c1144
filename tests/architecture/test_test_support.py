"""Fakes live in tests, not in wheels (STYLE: "fakes live in tests/, not in wheels").

Test support ships in the dev-only distribution ``gatehouse-testing``; no runtime
package imports it (or pytest), no runtime package defines a fake, and no test
imports a fake from a runtime package. In-memory adapters that ``make run`` uses
(``InMemoryEventBus``, ``MemoryRateLimitStore``) are real implementations, not
fakes, and are named for what they are.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {
    "common": ROOT / "libs/common/src/gatehouse/common",
    "gateway": ROOT / "gateway/src/gatehouse/gateway",
    "authors": ROOT / "services/authors/src/gatehouse/authors",
    "realtime": ROOT / "services/realtime/src/gatehouse/realtime",
    "auth": ROOT / "services/auth/src/gatehouse/auth",
    "cli": ROOT / "src/gatehouse/cli",
}
TEST_FOLDERS = [
    ROOT / "tests",
    ROOT / "libs/common/tests",
    ROOT / "libs/testing/tests",
    ROOT / "gateway/tests",
    *sorted((ROOT / "services").glob("*/tests")),
]
FAKE_NAME = re.compile(r"^_?(Fake|Stub|Mock|Dummy|Test)[A-Z_]")
DEV_ONLY = ("gatehouse.testing", "pytest", "_pytest", "unittest.mock")
# The authors engineer moves the authors fakes into its tests as part of #7; when that
# lands this mark turns into a strict XPASS failure and is to be removed.
PENDING: dict[str, str] = {}


def _python_files(folder: Path) -> Iterator[Path]:
    yield from (p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _runtime_params() -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=PENDING[name], strict=True))
        if name in PENDING
        else name
        for name in sorted(RUNTIME)
    ]


@pytest.mark.parametrize("package", sorted(RUNTIME))
def test_runtime_packages_never_import_test_support(package: str) -> None:
    offending = []
    for path in _python_files(RUNTIME[package]):
        for node in ast.walk(_tree(path)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offending += [
                f"{path.relative_to(ROOT)} imports {name}"
                for name in names
                if any(name == dev or name.startswith(dev + ".") for dev in DEV_ONLY)
            ]
    assert offending == []


@pytest.mark.parametrize("package", _runtime_params())
def test_runtime_packages_define_no_fakes(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)}: class {node.name}"
        for path in _python_files(RUNTIME[package])
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef) and FAKE_NAME.match(node.name)
    ]
    assert offending == []


def test_no_test_imports_a_fake_from_a_runtime_package() -> None:
    runtime_modules = tuple(f"gatehouse.{name}" for name in RUNTIME)
    offending = []
    for folder in TEST_FOLDERS:
        for path in _python_files(folder):
            for node in ast.walk(_tree(path)):
                if not (isinstance(node, ast.ImportFrom) and node.module):
                    continue
                if not node.module.startswith(runtime_modules):
                    continue
                offending += [
                    f"{path.relative_to(ROOT)}: {alias.name} from {node.module}"
                    for alias in node.names
                    if FAKE_NAME.match(alias.name) or node.module.endswith(".testing")
                ]
    assert offending == [] or _only_pending(offending)


def _only_pending(offending: list[str]) -> bool:
    """The pending authors fakes are the only ones allowed, until #7 moves them."""
    return all("gatehouse.authors.adapters.memory" in line for line in offending)


def test_the_rules_would_catch_a_fake(tmp_path: Path) -> None:
    (tmp_path / "fakes.py").write_text("class FakeBus:\n    pass\n")
    tree = _tree(tmp_path / "fakes.py")
    classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    assert [name for name in classes if FAKE_NAME.match(name)] == ["FakeBus"]
    assert not FAKE_NAME.match("InMemoryEventBus")
    assert not FAKE_NAME.match("Tester")
