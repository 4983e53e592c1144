"""Errors of the HTTP API: how each is answered and how each is documented.

Every error is ``application/problem+json`` (RFC 9457) with a stable ``code``. The
OpenAPI document says so with the real body of each status (the ``Problem``
schema and an example), so what a client reads in the spec is what it gets.

Request validation is split by where the fault is: a query, path or header
parameter is a 400 ``invalid_parameter`` (a path id that is not a UUID is a 404:
no resource can live there), a body that is not JSON a 400 ``malformed_json``,
a body of another media type a 415, and a JSON body that breaks the schema a 422
``validation_failed`` listing each field. A 405 names every method the path has.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from gatehouse.authors.adapters.outbox import Refusal
from gatehouse.authors.entrypoints.http.dependencies import get_services, refused
from gatehouse.common.errors import PreconditionRequired
from gatehouse.common.problem import PROBLEM_JSON, problem_body, status_code_word, status_title
from gatehouse.common.problem_handlers import problem_response

JSON_TYPES = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")
FIELD_NAME = re.compile(r"^[a-z_]{1,32}$")
BASE = "https://gatehouse.dev/problems/"

# The Problem component every upstream declares alike (the gateway merges them; the
# contracts suite compares them): RFC 9457 members and the stable ``code``.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "code"],
}
# A 422 of this service also lists each field that broke the schema.
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "description": "Each field that broke the schema (absent for domain rules).",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg", "type"],
                        "properties": {
                            "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                    },
                }
            },
        },
    ]
}
SCHEMAS = {"Problem": PROBLEM_SCHEMA, "ValidationProblem": VALIDATION_PROBLEM_SCHEMA}

_EXAMPLES: dict[int, tuple[str, str, str, dict[str, Any]]] = {
    400: (
        "invalid_parameter",
        "A parameter is unknown, malformed or out of range",
        "per_page: must be 1 to 100",
        {"parameter": "per_page"},
    ),
    401: (
        "unauthorized",
        "No bearer token, or one that does not verify",
        "a bearer token is required",
        {},
    ),
    403: (
        "forbidden",
        "The token lacks the role this operation needs",
        "requires one of the roles: create-author",
        {},
    ),
    404: ("not_found", "No such resource", "author 5f0c2a4e-... does not exist", {}),
    409: (
        "conflict",
        "The change clashes with the current state",
        "an author named 'Octavia Butler' already exists",
        {},
    ),
    412: (
        "precondition_failed",
        "`If-Match` names a version that is no longer current",
        "the resource is at version 3, not 2",
        {"current_version": 3},
    ),
    415: ("unsupported_media_type", "The body is not JSON", "send application/json", {}),
    422: (
        "validation_failed",
        "The body breaks the schema or the domain's rules",
        "the request is not valid",
        {"errors": [{"loc": ["body", "name"], "msg": "Field required", "type": "missing"}]},
    ),
    428: (
        "precondition_required",
        "This service requires `If-Match` on writes",
        "send If-Match with the ETag you read",
        {},
    ),
    429: ("rate_limited", "Too many requests (the gateway's limit)", "slow down", {}),
    503: (
        "unavailable",
        "The database is unavailable; retry after `Retry-After` seconds",
        "the database is unavailable; retry shortly",
        {},
    ),
}


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with its real problem body.

    ``descriptions`` overrides a description: ``problems(404, s404="No such author")``.
    """
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        code, description, detail, extra = _EXAMPLES[status]
        example = {
            "type": BASE + code,
            "title": status_title(status),
            "status": status,
            "detail": detail,
            "code": code,
            "instance": "/v1/authors",
            **extra,
        }
        response: dict[str, Any] = {
            "description": descriptions.get(f"s{status}", description),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": f"#/components/schemas/{_schema(status)}"},
                    "example": example,
                }
            },
        }
        if status in (429, 503):
            response["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            }
        documented[status] = response
    return documented


def _schema(status: int) -> str:
    return "ValidationProblem" if status == 422 else "Problem"


def install(app: FastAPI) -> None:
    """The authors-specific handlers (on top of the common ones)."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(PreconditionRequired, _on_precondition_required)


async def _on_precondition_required(request: Request, exc: Exception) -> Response:
    """A write without ``If-Match`` where one is required: refused here, audited here."""
    assert isinstance(exc, PreconditionRequired)
    await _audit(request, Refusal(exc.status, exc.code))
    return problem_response(exc, request.url.path)


async def _audit(request: Request, refusal: Refusal) -> None:
    caller = getattr(request.state, "caller", None)
    if caller is not None:  # a write's caller: who tried what is audited
        message_type, context = caller
        await refused(request, await get_services(request), message_type, context, refusal)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    response = _validation_problem(request, list(exc.errors()))
    code = json.loads(bytes(response.body))["code"]
    await _audit(request, Refusal(response.status_code, code, _body_fields(list(exc.errors()))))
    return response


def _body_fields(errors: list[Any]) -> tuple[str, ...]:
    """The body fields a validation error names (only names the schema could declare)."""
    names = {
        str(e["loc"][1]) for e in errors if len(e.get("loc", ())) > 1 and e["loc"][0] == "body"
    }
    return tuple(sorted(n for n in names if FIELD_NAME.match(n)))


def _validation_problem(request: Request, errors: list[Any]) -> Response:
    where = {str(e.get("loc", ("body",))[0]) for e in errors}
    path = request.url.path
    if "path" in where:
        return _problem(404, "not_found", "no resource lives at this path", path)
    if where & {"query", "header"}:
        names = sorted({_parameter(e) for e in errors if e["loc"][0] in ("query", "header")})
        detail = "; ".join(f"{_parameter(e)}: {e.get('msg', '')}" for e in errors)
        return _problem(400, "invalid_parameter", detail, path, parameter=", ".join(names))
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and not JSON_TYPES.match(media):
        return _problem(415, "unsupported_media_type", f"send JSON, not {media}", path)
    if any(e.get("type") == "json_invalid" for e in errors):
        return _problem(400, "malformed_json", "the body is not valid JSON", path)
    fields = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    return _problem(422, "validation_failed", "the request is not valid", path, errors=fields)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    code = status_code_word(exc.status_code)
    detail = str(exc.detail) if exc.detail else status_title(exc.status_code)
    return _problem(exc.status_code, code, detail, request.url.path, headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (HEAD comes with GET), asked of the
    router itself so that nested routers count too."""
    routes = request.app.router.routes
    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def _problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(status, status_title(status), detail, code, instance, **extra)
    return Response(body, status, headers=headers, media_type=PROBLEM_JSON)


def _parameter(error: Any) -> str:
    loc = error.get("loc", ())
    return str(loc[1]) if len(loc) > 1 else str(loc[0])
