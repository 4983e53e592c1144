"""Every service documents its errors as they are sent: application/problem+json."""

from __future__ import annotations

import httpx

from .conftest import AppFactory


async def test_every_error_response_is_documented_as_problem_json(
    build_service: AppFactory,
) -> None:
    app = await build_service()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        document = (await client.get("/openapi.json")).json()
    errors = [
        (path, method, status, response)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[:1] in ("4", "5")
    ]
    for path, method, status, response in errors:
        assert list(response.get("content", {})) == ["application/problem+json"], (
            path,
            method,
            status,
        )
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
