"""Liveness, readiness and metrics (the health contract of CONTRACTS.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.responses import Response

from gatehouse.authors.adapters.database import ping
from gatehouse.authors.bootstrap import Services
from gatehouse.authors.entrypoints.http.dependencies import ServicesDep
from gatehouse.authors.migrations import current_revision, head_revision
from gatehouse.common.metrics import metrics_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process answers. Checks no dependency."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "A check failed"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Readiness, with the result of each check: `database` reachable, `schema` at the
    newest migration, `relay` running (when this process runs one)."""
    checks = {"database": await _database(services), "schema": await _schema(services)}
    if services.relay is not None:
        active = "active" if services.relay.active else "standing by"
        checks["relay"] = {"ok": services.relay_running(), "detail": active}
    ready = all(check["ok"] for check in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return metrics_response()


async def _database(services: Services) -> dict[str, Any]:
    try:
        await ping(services.engine)
    except Exception as exc:
        return {"ok": False, "detail": type(exc).__name__}
    return {"ok": True, "detail": "reachable"}


async def _schema(services: Services) -> dict[str, Any]:
    try:
        async with services.engine.connect() as conn:
            current = await conn.run_sync(current_revision)
    except Exception as exc:
        return {"ok": False, "detail": type(exc).__name__}
    head = head_revision()
    return {"ok": current == head, "detail": f"at {current}, newest {head}"}
