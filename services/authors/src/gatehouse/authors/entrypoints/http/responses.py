"""Responses of resources: JSON bodies with their ``ETag``, ``Location`` and replay marker."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.responses import Response

from gatehouse.authors.entrypoints.http.dependencies import etag, not_modified
from gatehouse.authors.service_layer.messagebus import Outcome

REPLAYED = "Idempotent-Replayed"


def resource(snapshot: dict[str, Any], status: int = 200, **headers: str) -> Response:
    body = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False).encode()
    response = Response(body, status, media_type="application/json")
    response.headers["ETag"] = etag(int(snapshot["version"]))
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def unchanged(snapshot: dict[str, Any], if_none_match: str | None) -> bool:
    return not_modified(if_none_match, int(snapshot["version"]))


def json_body(body: dict[str, Any]) -> Response:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(raw, 200, media_type="application/json")


def read(snapshot: dict[str, Any], if_none_match: str | None) -> Response:
    """A GET: the resource, or a 304 when the caller's ``If-None-Match`` still holds."""
    if not_modified(if_none_match, int(snapshot["version"])):
        return Response(status_code=304, headers={"ETag": etag(int(snapshot["version"]))})
    return resource(snapshot)


def written(outcome: Outcome, request: Request, collection: str, status: int = 200) -> Response:
    """A write's answer; ``collection`` makes the ``Location`` of a 201."""
    extra = {REPLAYED: "true"} if outcome.replayed else {}
    if outcome.resource is None:
        response = Response(status_code=204)
        response.headers.update(extra)
        return response
    if status == 201:
        root = request.scope.get("root_path", "")
        extra["Location"] = f"{root}{collection}/{outcome.resource['id']}"
    return resource(outcome.resource, status, **extra)


def listing(data: list[dict[str, Any]], meta: dict[str, Any]) -> Response:
    body = json.dumps({"data": data, "meta": meta}, separators=(",", ":"), ensure_ascii=False)
    return Response(body.encode(), 200, media_type="application/json")
