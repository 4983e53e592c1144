"""The FastAPI exception handlers that answer every error as ``application/problem+json``.

* :class:`~gatehouse.common.errors.GatehouseError`: its status, code and detail.
* Starlette's ``HTTPException`` (a 404 of the router, a 405): its status, with a
  snake_case code (``not_found``, ``method_not_allowed``).
* ``RequestValidationError``: 422 ``validation_failed`` with the failing fields.

An unexpected exception is not handled here: Starlette would answer it after the
request's context is gone and hand it on to the server, which logs it again.
:class:`gatehouse.common.middleware.ServiceMiddleware` answers it instead.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gatehouse.common.errors import GatehouseError
from gatehouse.common.problem import PROBLEM_JSON, problem_body, status_code_word, status_title

log = logging.getLogger("gatehouse.errors")


def problem_response(error: GatehouseError, instance: str | None = None) -> Response:
    """``error`` as a Starlette response."""
    body = problem_body(
        error.status, error.title, error.detail, error.code, instance, **error.extra
    )
    return Response(body, error.status, headers=error.headers, media_type=PROBLEM_JSON)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every deliberate error of a FastAPI app answer ``application/problem+json``,
    and its OpenAPI document say so (FastAPI documents its 422 as ``application/json``)."""
    app.add_exception_handler(GatehouseError, _on_gatehouse)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    document_problems(app)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "A stable snake_case error code."},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "The failing fields of a 422.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def document_problems(app: FastAPI) -> None:
    """Rewrite the app's OpenAPI document: every error response of an operation is
    ``application/problem+json`` with the ``Problem`` schema, and FastAPI's validation
    schemas go."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for path in document.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if status[:1] in ("4", "5"):
                        response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


async def _on_gatehouse(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatehouseError)
    if exc.status >= 500:
        log.warning("%s %s: %s", exc.status, request.url.path, exc.detail)
    return problem_response(exc, request.url.path)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    body = problem_body(
        status, status_title(status), str(exc.detail), status_code_word(status), request.url.path
    )
    return Response(body, status, headers=exc.headers, media_type=PROBLEM_JSON)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    body = problem_body(
        422,
        "Unprocessable Content",
        "the request is not valid",
        "validation_failed",
        request.url.path,
        errors=errors,
    )
    return Response(body, 422, media_type=PROBLEM_JSON)
