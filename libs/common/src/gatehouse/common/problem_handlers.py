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
    """Make every deliberate error of a FastAPI app answer ``application/problem+json``."""
    app.add_exception_handler(GatehouseError, _on_gatehouse)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)


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
