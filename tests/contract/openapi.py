"""The OpenAPI document of the API as clients see it through the gateway.

The gateway serves it, merged from its upstreams, at ``/openapi.json`` (DESIGN §3).
Until that lands, :func:`interim_merge` stands in for it: each upstream's own
document, its paths moved to where the gateway routes them (``gateway.yaml``), only
the methods the gateway lets through, and the answers the gateway itself adds
(401/403 by the route's access rules, 429, 502-504), with the bearer scheme.
Remove it once the gateway's merge is on main.
"""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import httpx
import yaml

Document = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PROBLEM_SCHEMA = {
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
GATEWAY_ANSWERS = {
    "429": "Rate limit exceeded (`Retry-After`, `RateLimit` headers)",
    "502": "The upstream failed or answered with an invalid response",
    "503": "The upstream is unavailable or its circuit is open (`Retry-After`)",
    "504": "The upstream did not answer in time",
}


def gateway_document(gateway: str, upstreams: dict[str, str]) -> Document:
    """The gateway's ``/openapi.json``, or the interim merge while the gateway has none."""
    response = httpx.get(f"{gateway}/openapi.json", timeout=10)
    if response.status_code != 404:
        response.raise_for_status()
        document = response.json()
        assert isinstance(document, dict)
        return document
    return interim_merge({name: _fetch(url) for name, url in upstreams.items()})


def _fetch(url: str) -> Document:
    response = httpx.get(f"{url}/openapi.json", timeout=10)
    response.raise_for_status()
    document = response.json()
    assert isinstance(document, dict)
    return document


def _routes() -> list[dict[str, Any]]:
    shipped = resources.files("gatehouse.gateway").joinpath("gateway.yaml").read_text()
    routes = yaml.safe_load(shipped)["routes"]
    assert isinstance(routes, list)
    return [r for r in routes if not r.get("websocket")]


def _route_for(routes: list[dict[str, Any]], upstream: str, path: str) -> tuple[str, Any] | None:
    """Where the gateway exposes ``path`` of ``upstream``, and the route that does it."""
    for route in routes:
        if route["upstream"] != upstream:
            continue
        public_path = route.get("strip_prefix", "") + path
        prefix = route["prefix"]
        if public_path == prefix or public_path.startswith(prefix.rstrip("/") + "/"):
            return public_path, route
    return None


def interim_merge(upstreams: dict[str, Document]) -> Document:
    routes = _routes()
    merged: Document = {
        "openapi": "3.1.0",
        "info": {"title": "Gatehouse (through the gateway)", "version": "1.0.0"},
        "paths": {},
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    for name, document in upstreams.items():
        _merge_components(merged["components"]["schemas"], document)
        for path, item in document.get("paths", {}).items():
            found = _route_for(routes, name, path)
            if found is not None:
                public_path, route = found
                merged["paths"][public_path] = _through(item, route)
    return merged


def _merge_components(schemas: dict[str, Any], document: Document) -> None:
    for key, schema in document.get("components", {}).get("schemas", {}).items():
        assert schemas.get(key, schema) == schema, f"two upstreams define {key} differently"
        schemas[key] = schema


def _through(item: dict[str, Any], route: dict[str, Any]) -> dict[str, Any]:
    allowed = {m.lower() for m in route.get("methods") or METHODS}
    public = route.get("public", False)
    exposed = {}
    for method, operation in item.items():
        if method not in METHODS:
            exposed[method] = operation
        elif method in allowed:
            exposed[method] = _with_gateway_answers(copy.deepcopy(operation), public, route)
    return exposed


def _with_gateway_answers(
    operation: dict[str, Any], public: bool, route: dict[str, Any]
) -> dict[str, Any]:
    responses = operation.setdefault("responses", {})
    answers = dict(GATEWAY_ANSWERS)
    if not public:
        answers["401"] = "No, invalid or expired bearer token"
        operation["security"] = [{"bearer": []}]
    else:
        operation.pop("security", None)
    if route.get("roles"):
        answers["403"] = "The token lacks the role"
    for status, description in answers.items():
        responses.setdefault(status, {"description": description, "content": PROBLEM})
    return operation
