"""401 versus 403 at the edge (RFC 9110), per route and method, before any upstream work."""

from __future__ import annotations

import time

import pytest

from .conftest import config_for

AUTHORS = "/api/v1/authors"


@pytest.mark.parametrize(
    ("method", "path", "roles", "status"),
    [
        ("GET", AUTHORS, ["get-authors"], 200),
        ("GET", AUTHORS + "/7/books", ["get-authors"], 200),
        ("POST", AUTHORS, ["get-authors"], 403),
        ("POST", AUTHORS, ["create-author"], 200),
        ("PUT", AUTHORS + "/7", ["update-author"], 200),
        ("PATCH", AUTHORS + "/7", ["create-author"], 403),
        ("DELETE", AUTHORS + "/7", ["delete-author"], 200),
        ("DELETE", "/api/v2/books/3", ["update-author"], 403),
        ("GET", "/api/v1/audit", ["get-authors"], 403),
        ("GET", "/api/v1/audit", ["view-audit-logs"], 200),
        ("DELETE", AUTHORS + "/7", ["admin"], 200),
        ("GET", "/api/v2/audit", ["admin"], 200),
        ("GET", "/auth/me", [], 200),
    ],
)
async def test_role_matrix(
    start_gateway, issuer, upstream, http, method, path, roles, status
) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.request(method, url + path, headers=issuer.bearer(roles))
    assert response.status_code == status
    assert len(upstream.seen) == (1 if status == 200 else 0)
    if status == 403:
        assert response.json()["code"] == "forbidden"


async def test_no_token_is_401_with_challenge(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert upstream.seen == []


@pytest.mark.parametrize(
    "authorization",
    ["Basic YWxpY2U6c2VjcmV0", "Bearer not-a-jwt", "Bearer {expired}", "Bearer {wrong_aud}"],
)
async def test_bad_credentials_are_401(start_gateway, issuer, upstream, http, authorization):
    expired = issuer.token(["admin"], exp=int(time.time()) - 3600)
    wrong_aud = issuer.token(["admin"], aud="other", azp="other")
    value = authorization.format(expired=expired, wrong_aud=wrong_aud)
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.get(url + AUTHORS, headers={"Authorization": value})
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    assert upstream.seen == []


async def test_public_routes_need_no_token(start_gateway, upstream, http) -> None:
    async with start_gateway(config_for(upstream.url)) as url:
        response = await http.post(url + "/auth/refresh", json={"refresh_token": "r"})
    assert response.status_code == 200


async def test_the_authorization_header_reaches_the_upstream(start_gateway, issuer, upstream, http):
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config_for(upstream.url)) as url:
        await http.get(url + AUTHORS, headers=headers)
    assert ["authorization", headers["Authorization"]] in upstream.seen[0]["headers"]
