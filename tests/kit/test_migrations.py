"""Migrations: the embedded profile migrates itself; production needs `gatehouse migrate
<service>`, refuses to start on an older schema naming the command, and is not ready
while its schema falls behind."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest

from gatehouse.common.errors import ConfigurationError
from gatehouse.testing import serve

from .conftest import build_auth

pytestmark = pytest.mark.services

PRODUCTION_AUTH = {
    "GATEHOUSE_PROFILE": "production",
    "GATEHOUSE_AUTH_EMBEDDED_ISSUER": "true",
    "GATEHOUSE_AUTH_KEY_PASSPHRASE": "a passphrase of the signing key",
    "GATEHOUSE_AUTH_PUBLIC_URL": "https://auth.example.com",
}


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_production_auth_refuses_an_unmigrated_database_naming_the_command(
    tmp_path: Path, postgres_url: str
) -> None:
    app = await build_auth(tmp_path, GATEHOUSE_AUTH_DATABASE_URL=postgres_url, **PRODUCTION_AUTH)
    with pytest.raises(ConfigurationError) as refused:
        async with serve(app):
            pytest.fail("started on an unmigrated database")
    assert refused.value.setting == "GATEHOUSE_AUTH_DATABASE_URL"
    assert "not migrated" in refused.value.detail
    assert "run `gatehouse migrate auth`" in refused.value.detail
    connection = await asyncpg.connect(_plain(postgres_url))
    try:
        tables = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    finally:
        await connection.close()
    assert tables == [], "production migrated by itself"


async def test_auth_is_not_ready_while_its_schema_is_behind(
    tmp_path: Path, postgres_url: str
) -> None:
    embedded = await build_auth(tmp_path / "first", GATEHOUSE_AUTH_DATABASE_URL=postgres_url)
    async with serve(embedded):
        pass  # the embedded profile migrated the database
    app = await build_auth(tmp_path, GATEHOUSE_AUTH_DATABASE_URL=postgres_url, **PRODUCTION_AUTH)
    async with serve(app) as url, httpx.AsyncClient() as client:
        assert (await client.get(f"{url}/readyz")).status_code == 200
        connection = await asyncpg.connect(_plain(postgres_url))
        try:  # as if a newer release were deployed before its migration ran
            await connection.execute("DELETE FROM auth_alembic_version")
        finally:
            await connection.close()
        ready = await client.get(f"{url}/readyz")
    assert ready.status_code == 503
    schema = ready.json()["checks"]["schema"]
    assert schema["ok"] is False
    assert "run `gatehouse migrate auth`" in schema["detail"]
