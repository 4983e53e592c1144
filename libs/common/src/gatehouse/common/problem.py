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


def status_title(status: int) -> str:
    """The reason phrase of ``status`` (``Not Found``), or ``Error``."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def status_code_word(status: int) -> str:
    """A stable snake_case ``code`` for an HTTP status: ``404`` -> ``not_found``."""
    return re.sub(r"[^a-z0-9]+", "_", status_title(status).lower()).strip("_") or "error"
