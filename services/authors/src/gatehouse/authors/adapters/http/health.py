"""Liveness, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gatehouse.authors.adapters.database import ping
from gatehouse.authors.adapters.http.dependencies import Resources, ResourcesDep
from gatehouse.authors.migrations import current_revision, head_revision
from gatehouse.common.metrics import metrics_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Checks no dependency."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "A check failed"}})
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """Readiness, with the result of each check: database reachable, schema at the
    newest migration, outbox relay running (when this process runs one)."""
    checks = {"database": await _database(resources), "schema": await _schema(resources)}
    if resources.relay is not None:
        checks["relay"] = {"ok": resources.relay_running(), "active": resources.relay.active}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return metrics_response()


async def _database(resources: Resources) -> dict[str, Any]:
    try:
        await ping(resources.engine)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


async def _schema(resources: Resources) -> dict[str, Any]:
    try:
        async with resources.engine.connect() as conn:
            current = await conn.run_sync(current_revision)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    head = head_revision()
    return {"ok": current == head, "revision": current, "head": head}
