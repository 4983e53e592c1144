"""RFC 9457 problem details for HTTP and error envelopes for WebSocket.

Plain Python over raw ASGI: no FastAPI or Starlette import, so the gateway's pure
ASGI pipeline uses it without loading a framework. The FastAPI exception handlers
that answer with these bodies are in :mod:`gatehouse.common.problem_handlers`.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from gatehouse.common.errors import GatehouseError
from gatehouse.common.types import Send

PROBLEM_JSON = "application/problem+json"


def problem_body(
    status: int, title: str, detail: str, code: str, instance: str | None = None, **extra: Any
) -> bytes:
    """An RFC 9457 problem document; ``extra`` members (``request_id``, ``errors``) join it."""
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


# RFC 9110's phrases where older Pythons still say "Request Entity Too Large" and
# "Unprocessable Entity" (the titles of PayloadTooLarge and ValidationFailed).
_RFC9110_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def status_title(status: int) -> str:
    """The reason phrase of ``status`` (``Not Found``) as RFC 9110 has it, or ``Error``."""
    if status in _RFC9110_PHRASES:
        return _RFC9110_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# The code of each status as the error class of that status in gatehouse.common.errors
# names it, so that a router's 404 or a framework's 429 reads as the errors raised on
# purpose do, in every service and in the gateway.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    426: "upgrade_required",
    428: "precondition_required",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "upstream_timeout",
}


def status_code_word(status: int) -> str:
    """The stable snake_case ``code`` of an HTTP status: ``404`` -> ``not_found``,
    ``429`` -> ``rate_limited``; a status no error class stands for is its reason
    phrase in snake_case (``418`` -> ``i_m_a_teapot``), an unknown one ``error``."""
    if status in STATUS_CODES:
        return STATUS_CODES[status]
    return re.sub(r"[^a-z0-9]+", "_", status_title(status).lower()).strip("_") or "error"
