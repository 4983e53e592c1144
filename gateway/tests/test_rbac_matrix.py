"""The RBAC matrix, generated from the shipped route table: route x method x demo identity.

Expectations come from the roles of DESIGN §12/§13, written out here independently
of the config, so a wrong role in gateway.yaml fails this test.
"""

from __future__ import annotations

import asyncio

from gatehouse.gateway.config import Route

from .conftest import config_for

IDENTITIES = {
    "admin": ["admin"],
    "editor": ["get-authors", "create-author", "update-author", "delete-author"],
    "viewer": ["get-authors"],
    "auditor": ["view-audit-logs"],
    "nobody": [],
    "anonymous": None,
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
RESOURCE_ROLES = {
    "GET": "get-authors",
    "HEAD": "get-authors",
    "POST": "create-author",
    "PUT": "update-author",
    "PATCH": "update-author",
    "DELETE": "delete-author",
}


def expected(route: Route, method: str, roles: list[str] | None) -> int:
    """The status DESIGN says, from the route's path (not from its config)."""
    path = route.prefix
    if path == "/auth/admin":  # the auth service's admin API: the admin role, every method
        return 401 if roles is None else 200 if "admin" in roles else 403
    if (path.startswith("/auth/") and path != "/auth/me") or path == "/realms":
        allowed = ("GET", "HEAD") if path == "/realms" else ("POST",)
        return 200 if method in allowed else 405
    if path == "/auth/me":
        needed = None if method in ("GET", "HEAD") else "405"
    elif path.endswith("/audit"):
        needed = "view-audit-logs" if method in ("GET", "HEAD") else "405"
    else:
        needed = RESOURCE_ROLES[method]
    if needed == "405":
        return 405
    if roles is None:
        return 401
    if needed is None or "admin" in roles or needed in roles:
        return 200
    return 403


async def test_rbac_matrix_of_the_shipped_routes(start_gateway, issuer, upstream, http) -> None:
    generous = {"limit": 100_000, "window": 60}
    config = config_for(upstream.url, rate_limits={"default": generous, "login": generous})
    routes = [r for r in config.routes if not r.websocket]
    headers = {
        name: (issuer.bearer(roles, sub=name) if roles is not None else {})
        for name, roles in IDENTITIES.items()
    }
    cases = [(r, m, name) for r in routes for m in METHODS for name in IDENTITIES]
    lanes = asyncio.Semaphore(16)  # a few connections, as a client would: no pool timeouts
    async with start_gateway(config) as url:

        async def status(route: Route, method: str, who: str) -> int:
            async with lanes:
                response = await http.request(
                    method, url + route.prefix + "/x", headers=headers[who]
                )
            return response.status_code

        got = await asyncio.gather(*(status(*case) for case in cases))
    wrong = [
        f"{method} {route.prefix} as {who}: {status} (expected {want})"
        for (route, method, who), status in zip(cases, got, strict=True)
        if status != (want := expected(route, method, IDENTITIES[who]))
    ]
    assert wrong == []
    assert len(cases) >= 300
