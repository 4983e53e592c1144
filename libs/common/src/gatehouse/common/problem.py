"""RFC 9457 problem details for HTTP and error envelopes for WebSocket."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gatehouse.common.errors import GatehouseError
from gatehouse.common.types import Send

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("gatehouse.errors")


def problem_body(
    status: int, title: str, detail: str, code: str, instance: str | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {
        "type": f"https://gatehouse.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return json.dumps(body, separators=(",", ":")).encode()


def problem_response(error: GatehouseError, instance: str | None = None) -> Response:
    body = problem_body(
        error.status, error.title, error.detail, error.code, instance, **error.extra
    )
    return Response(body, error.status, headers=error.headers, media_type=PROBLEM_JSON)


def encode_problem(
    error: GatehouseError, instance: str | None = None
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The raw ASGI headers and body of ``error`` as problem+json."""
    body = problem_body(
        error.status, error.title, error.detail, error.code, instance, **error.extra
    )
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body))]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return headers, body


async def send_problem(send: Send, error: GatehouseError, instance: str | None = None) -> None:
    """Write a problem response straight to an ASGI ``send`` (for pure ASGI middleware)."""
    headers, body = encode_problem(error, instance)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_envelope(error: GatehouseError) -> dict[str, str]:
    """The WebSocket form of an error: ``{"code": ..., "message": ...}``."""
    return {"code": error.code, "message": error.detail}


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of a FastAPI app answer ``application/problem+json``."""

    async def on_gatehouse(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatehouseError)
        if exc.status >= 500:
            log.error("request failed: %s", exc.detail)
        return problem_response(exc, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        body = problem_body(
            exc.status_code,
            _reason(exc.status_code),
            str(exc.detail),
            f"http_{exc.status_code}",
            request.url.path,
        )
        return Response(body, exc.status_code, headers=exc.headers, media_type=PROBLEM_JSON)

    async def on_validation(request: Request, exc: Exception) -> Response:
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

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem_body(
            500,
            "Internal Server Error",
            "an unexpected error occurred",
            "internal_error",
            request.url.path,
        )
        return Response(body, 500, media_type=PROBLEM_JSON)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(GatehouseError, on_gatehouse)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
