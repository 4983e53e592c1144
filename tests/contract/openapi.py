"""The OpenAPI document of the API as clients see it: the gateway's ``/openapi.json``,
merged from its upstreams with the gateway's own paths, answers and bearer scheme
(DESIGN §3). The contract suite tests the API against this document only."""

from __future__ import annotations

from typing import Any

import httpx


def gateway_document(gateway: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway}/openapi.json", timeout=10)
    response.raise_for_status()
    document = response.json()
    assert isinstance(document, dict)
    assert document.get("paths"), "the gateway's OpenAPI document has no paths"
    return document
