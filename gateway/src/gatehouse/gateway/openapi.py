"""One API description for the whole public surface, built from the upstreams' own.

``/openapi.json`` merges the upstreams' OpenAPI documents under the public paths
the route table gives them (``/v1/authors`` of authors becomes ``/api/v1/authors``),
keeps only the methods the gateway routes, marks authenticated operations with the
bearer scheme, and adds the errors the gateway itself answers (401, 403, 413, 415,
429, 502, 503, 504) as problem+json. ``/asyncapi.json`` is realtime's AsyncAPI
document with the gateway as its server. ``/docs`` is Swagger UI on the merged
document. Upstream documents are fetched on demand and kept for ``TTL`` seconds;
an upstream that cannot be reached is left out (and listed in ``x-missing``).

The merged document also says which methods each public resource has: a ``405``
of the gateway's own lists those in ``Allow`` (:meth:`ApiDocuments.methods_of`),
not every method its route group accepts on any path.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from gatehouse.gateway.config import ALL_METHODS, GatewayConfig, Route
from gatehouse.gateway.edge.policy import RouteTable
from gatehouse.gateway.proxy.upstream import UpstreamPool

log = logging.getLogger("gatehouse.gateway.openapi")
TTL = 30.0
_METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_ERRORS = {
    "401": "Missing, invalid, expired or revoked access token.",
    "403": "The token lacks a role this route and method need.",
    "413": "Request body over the gateway's limit (gzip bodies counted decoded).",
    "414": "Request target (path and query) over the gateway's limit.",
    "415": "Request body of a type (or encoding) this route does not accept.",
    "429": "Rate limit exceeded; see Retry-After and RateLimit.",
    "502": "The upstream could not be reached or answered badly.",
    "503": "The upstream's circuit is open, or it is unavailable; see Retry-After.",
    "504": "The upstream did not answer in time.",
}
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable snake_case error code"},
        "instance": {"type": "string", "description": "the public path"},
    },
}
DOCS_CSP = (
    b"default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    b"style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src data: https:; "
    b"connect-src 'self'; frame-ancestors 'none'"
)
DOCS_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Gatehouse API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


class ApiDocuments:
    def __init__(self, config: GatewayConfig, upstreams: dict[str, UpstreamPool]) -> None:
        self.config = config
        self.upstreams = upstreams
        self.table = RouteTable(config.routes)
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = asyncio.Lock()
        self._resources: Sequence[tuple[re.Pattern[str], tuple[str, ...]]] = ()
        self._resources_at = -TTL

    async def methods_of(self, path: str) -> tuple[str, ...] | None:
        """The methods the public resource at ``path`` has (HEAD with GET), as the
        upstreams' documents say; None when no document describes it."""
        if time.monotonic() - self._resources_at >= TTL:
            await self.openapi()
        for pattern, methods in self._resources:
            if pattern.fullmatch(path):
                return methods
        return None

    async def fetch(self, upstream: str, path: str) -> dict[str, Any] | None:
        key = f"{upstream}{path}"
        async with self._lock:
            cached = self._cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < TTL:
                return cached[1]
            pool = self.upstreams.get(upstream)
            document = await _get_json(pool, path) if pool is not None else None
            self._cache[key] = (time.monotonic(), document)
            return document

    async def openapi(self) -> dict[str, Any]:
        merged: dict[str, Any] = {
            "openapi": "3.1.0",
            "info": {
                "title": "Gatehouse API",
                "version": "1",
                "description": "Everything public, through the gateway. Tokens: POST /auth/token.",
            },
            "paths": {},
            "components": {
                "schemas": {"Problem": PROBLEM_SCHEMA},
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                },
            },
        }
        missing = []
        names = sorted({r.upstream for r in self.config.routes if not r.websocket})
        for name in names:
            document = await self.fetch(name, "/openapi.json")
            if document is None:
                missing.append(name)
                continue
            self._merge(merged, name, document)
        if missing:
            merged["x-missing"] = missing
        self._resources, self._resources_at = _resources(merged["paths"]), time.monotonic()
        return merged

    def _merge(self, merged: dict[str, Any], upstream: str, document: dict[str, Any]) -> None:
        schemas = merged["components"]["schemas"]
        for name, schema in (document.get("components", {}).get("schemas") or {}).items():
            schemas.setdefault(name, schema)
        for path, item in (document.get("paths") or {}).items():
            public, route = self._public(upstream, path)
            if route is None or not isinstance(item, dict):
                continue
            operations = {}
            for method, operation in item.items():
                if method in _METHODS and route.allows(method.upper()):
                    operations[method] = _decorate(dict(operation), route, method)
                elif method not in _METHODS:
                    operations[method] = operation
            if any(m in operations for m in _METHODS):
                merged["paths"][public] = operations

    def _public(self, upstream: str, path: str) -> tuple[str, Route | None]:
        """The public path of an upstream path, and the route that serves it (or None)."""
        template = path.split("{", 1)[0].rstrip("/") or "/"
        for route in self.table.routes:
            if route.upstream != upstream or route.websocket:
                continue
            public = (route.strip_prefix or "") + path
            probe = (route.strip_prefix or "") + template
            if self.table.match(probe) is route or self.table.match(public) is route:
                return public, route
        return path, None

    async def asyncapi(self) -> dict[str, Any] | None:
        routes = [r for r in self.config.routes if r.websocket]
        if not routes:
            return None
        document = await self.fetch(routes[0].upstream, "/asyncapi.json")
        if document is None:
            return None
        document = copy.deepcopy(document)
        base = self.config.public_url
        for server in (document.get("servers") or {}).values():
            if isinstance(server, dict):
                if base:
                    server["host"] = base.split("//", 1)[-1]
                server["pathname"] = routes[0].prefix
        return document


def _resources(paths: dict[str, Any]) -> list[tuple[re.Pattern[str], tuple[str, ...]]]:
    """Each public path template as a pattern, with the methods it has."""
    table = []
    for path, item in paths.items():
        named = {m.upper() for m in item if m in _METHODS}
        if "GET" in named:
            named.add("HEAD")
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}/]*\}", path))
        table.append((re.compile(pattern), tuple(m for m in ALL_METHODS if m in named)))
    return table


def _decorate(operation: dict[str, Any], route: Route, method: str) -> dict[str, Any]:
    responses = dict(operation.get("responses") or {})
    codes = ["414", "429", "502", "503", "504"]
    if not route.public:
        codes = ["401", "403", *codes]
        operation["security"] = [{"bearerAuth": []}]
    if method in ("post", "put", "patch"):
        codes = [*codes, "413", "415"]
    for code in codes:
        responses.setdefault(
            code,
            {
                "description": _ERRORS[code],
                "content": {"application/problem+json": {"schema": _PROBLEM}},
            },
        )
    operation["responses"] = responses
    return operation


async def _get_json(pool: UpstreamPool, path: str) -> dict[str, Any] | None:
    replica = pool.pick()
    try:
        async with pool.session.get(
            replica.base + path, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            if response.status != 200:
                return None
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("no %s from upstream %s: %r", path, pool.name, exc)
        return None
    return dict(document) if isinstance(document, dict) else None
