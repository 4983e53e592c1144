"""No service imports another, and gatehouse.common imports no service (DESIGN §1).

The domain layer of the authors service imports only the standard library, its
own package and the error hierarchy of gatehouse.common (itself standard library
only), never FastAPI, SQLAlchemy, aio-pika or Redis (STYLE rule 1).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "common": ROOT / "libs/common/src/gatehouse/common",
    "gateway": ROOT / "gateway/src/gatehouse/gateway",
    "authors": ROOT / "services/authors/src/gatehouse/authors",
    "realtime": ROOT / "services/realtime/src/gatehouse/realtime",
    "auth": ROOT / "services/auth/src/gatehouse/auth",
}


def imported_modules(folder: Path) -> set[tuple[Path, str]]:
    found: set[tuple[Path, str]] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path, node.module))
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_imports_only_itself_and_common(package: str) -> None:
    allowed = {"common", package}
    offending = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imported_modules(PACKAGES[package])
        if module.startswith("gatehouse.") and module.split(".")[1] not in allowed
    )
    assert offending == []


def test_authors_domain_imports_only_the_standard_library() -> None:
    domain = PACKAGES["authors"] / "domain"
    assert domain.is_dir(), "the authors service has a domain package"
    offending = sorted(
        f"{path.relative_to(ROOT)} imports {module}"
        for path, module in imported_modules(domain)
        if module.split(".")[0] not in sys.stdlib_module_names
        and not module.startswith("gatehouse.authors.domain")
        and module != "gatehouse.common.errors"
    )
    assert offending == []


def test_common_errors_stays_standard_library_only() -> None:
    errors = PACKAGES["common"] / "errors.py"
    modules = {module for _, module in imported_modules_of(errors)}
    assert {m.split(".")[0] for m in modules} <= set(sys.stdlib_module_names)


def imported_modules_of(path: Path) -> set[tuple[Path, str]]:
    return {(p, m) for p, m in imported_modules(path.parent) if p == path}


def test_the_check_would_catch_a_cross_service_import(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("from gatehouse.authors.app import create_app\n")
    modules = {module for _, module in imported_modules(tmp_path)}
    assert "gatehouse.authors.app" in modules
