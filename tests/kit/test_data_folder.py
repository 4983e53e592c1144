"""Secrets at rest: everything under the data folder is 0600 in a 0700 folder, and a
SQLite URL creates its folder, never the folder's parents."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gatehouse.common.errors import ConfigurationError
from gatehouse.testing import serve

from .conftest import build_auth, build_authors


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most systems run with; the modes must not depend on it
    yield
    os.umask(old)


@pytest.mark.usefixtures("usual_umask")
async def test_everything_the_services_keep_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    auth = await build_auth(tmp_path, GATEHOUSE_DATA_DIR=str(data), GATEHOUSE_DEMO_PASSWORD="")
    async with serve(auth) as url, httpx.AsyncClient() as client:
        password = (data / "demo-credentials").read_text().split()[-1]
        login = {"username": "admin", "password": password}
        assert (await client.post(f"{url}/auth/token", json=login)).status_code == 200
    authors_db = data / "authors.db"
    authors = await build_authors(
        tmp_path, GATEHOUSE_DATA_DIR=str(data), DATABASE_URL=f"sqlite:///{authors_db}"
    )
    async with serve(authors):
        pass
    kept = sorted(p for p in data.rglob("*"))
    assert {p.name for p in kept} >= {"auth.db", "authors.db", "demo-credentials"}
    assert _mode(data) == 0o700
    loose = [f"{p.name} {oct(_mode(p))}" for p in kept if _mode(p) & 0o077]
    assert loose == []


def test_a_sqlite_url_never_creates_the_folders_above_its_own(tmp_path: Path) -> None:
    from gatehouse.common.sql import create_engine

    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'place' / 'authors.db'}"
    with pytest.raises(ConfigurationError) as refused:
        create_engine(url)
    assert refused.value.setting == "DATABASE_URL"
    assert "does not exist" in refused.value.detail
    assert not (tmp_path / "no").exists()
