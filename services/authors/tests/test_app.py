"""Operations endpoints and start-up of the app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse.authors.adapters import orm
from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.tokens import JWTVerifier


async def test_healthz_readyz_and_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")
    await client.get("/v1/authors")
    metrics = await client.get("/metrics")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert {name: check["ok"] for name, check in checks.items()} == dict.fromkeys(
        ("jwks", "database", "schema", "relay_lag"), True
    )
    assert 'route="/v1/authors"' in metrics.text
    assert health.headers["x-request-id"]


async def test_an_unmigrated_database_is_not_ready(tmp_path: Path) -> None:
    settings = AuthorsSettings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path, run_relay=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["checks"]["schema"]["ok"] is False


async def test_an_unreachable_database_fails_start_up_naming_database_url(
    tmp_path: Path,
) -> None:
    settings = AuthorsSettings(
        database_url="postgresql://nobody@127.0.0.1:1/none", data_dir=tmp_path, run_relay=False
    )
    app = create_app(settings)

    with pytest.raises(ConfigurationError) as caught:
        async with app.router.lifespan_context(app):
            pass
    assert caught.value.setting == "DATABASE_URL"


def test_openapi_documents_routes_and_bearer_auth(tmp_path: Path) -> None:
    schema = create_app(AuthorsSettings(data_dir=tmp_path)).openapi()

    create = schema["paths"]["/v1/authors"]["post"]
    assert "create-author" in create["description"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_idempotency_keys_are_forgotten_once_their_24_hours_are_over(
    settings: AuthorsSettings, verifier: JWTVerifier, auth: Callable[..., dict[str, str]]
) -> None:
    sweeping = settings.model_copy(update={"key_sweep_interval": 0.05})
    app = create_app(sweeping, verifier=verifier)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            for key in ("old", "new"):
                headers = {**auth("admin"), "Idempotency-Key": key}
                made = await client.post("/v1/authors", json={"name": key}, headers=headers)
                assert made.status_code == 201
            engine = app.state.services.engine
            async with engine.begin() as conn:
                table = orm.idempotency_keys
                past = datetime.now(UTC) - timedelta(seconds=1)
                await conn.execute(
                    update(table).where(table.c.key == "old").values(expires_at=past)
                )

            async with asyncio.timeout(5):
                while True:
                    if await _keys(engine) == ["new"]:
                        break
                    await asyncio.sleep(0.02)


async def _keys(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.scalars(select(orm.idempotency_keys.c.key))).all())


def test_every_operation_is_documented_with_its_role_examples_and_errors(tmp_path: Path) -> None:
    """The issue's "OpenAPI worth reading": a summary, the role, examples that match their
    schema, and every error as the problem+json it really is."""
    spec = create_app(AuthorsSettings(data_dir=tmp_path)).openapi()
    operations = [
        (f"{method.upper()} {path}", operation)
        for path, methods in spec["paths"].items()
        if path.startswith(("/v1/", "/v2/"))
        for method, operation in methods.items()
    ]
    assert len(operations) == 18
    for name, operation in operations:
        roles = operation["x-roles"]
        assert operation["summary"], name
        assert any(f"`{r}`" in operation["description"] for r in roles), name
        body = operation.get("requestBody", {}).get("content", {})
        for media in body.values():
            assert _examples(media, spec), f"{name}: no request example"
        for status, response in operation["responses"].items():
            for media_type, media in response.get("content", {}).items():
                found = _examples(media, spec)
                assert found, f"{name} {status}: no example"
                if status.startswith(("4", "5")):
                    assert media_type == "application/problem+json", name
                    assert all(e["status"] == int(status) for e in found), (name, status)
        errors = {s for s in operation["responses"] if s.startswith(("4", "5"))}
        assert {"400", "401", "403", "429", "503"} <= errors, name
        if body:
            assert {"415", "422"} <= errors, name


def _examples(media: dict[str, Any], spec: dict[str, Any]) -> list[Any]:
    """The examples of a media type, each checked against its schema."""
    schema = media["schema"]
    target = schema
    if "$ref" in schema:
        target = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found = [e["value"] for e in media.get("examples", {}).values()]
    found += [media["example"]] if "example" in media else []
    found += target.get("examples", [])
    for example in found:
        jsonschema.validate(example, {**schema, "components": spec["components"]})
    return found
