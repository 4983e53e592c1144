"""The HTTP API through the real app, with RS256 tokens of an outside issuer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from gatehouse.common.events import CloudEvent, EventBus
from gatehouse.testing import TestIssuer

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"


async def test_an_editor_creates_an_author_and_a_viewer_reads_it(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    created = await client.post(
        "/v1/authors",
        json={"name": "N. K. Jemisin", "bio": "Broken Earth"},
        headers=auth("create-author"),
    )

    assert created.status_code == 201
    body = created.json()
    assert created.headers["location"] == f"/v1/authors/{body['id']}"
    assert (body["name"], body["bio"], body["version"]) == ("N. K. Jemisin", "Broken Earth", 1)
    read = await client.get(created.headers["location"], headers=auth("get-authors"))
    assert read.status_code == 200
    assert read.json() == body


async def test_each_creation_reaches_the_bus_with_a_sequence(
    client: httpx.AsyncClient, auth: Auth, bus: EventBus
) -> None:
    received: asyncio.Queue[CloudEvent] = asyncio.Queue()

    async def handler(event: CloudEvent) -> None:
        await received.put(event)

    await bus.subscribe("gatehouse.author.created", handler)
    created = await client.post("/v1/authors", json={"name": "Iain Banks"}, headers=auth("admin"))

    event = await asyncio.wait_for(received.get(), timeout=5)
    assert event.subject == created.json()["id"]
    assert event.data["name"] == "Iain Banks"
    assert event.sequence == 1


async def test_without_a_valid_token_it_is_401_problem_json(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    missing = await client.get("/v1/authors")
    forged = await client.get("/v1/authors", headers={"Authorization": "Bearer not.a.jwt"})

    for response in (missing, forged):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_for_another_audience_is_401(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    token = issuer.token(["admin"], aud=["someone-else", "account"], azp="someone-else")
    response = await client.get("/v1/authors", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [("POST", "/v1/authors", "get-authors"), ("GET", "/v1/authors", "create-author")],
)
async def test_without_the_role_it_is_403(
    client: httpx.AsyncClient, auth: Auth, method: str, path: str, role: str
) -> None:
    response = await client.request(method, path, json={"name": "X"}, headers=auth(role))

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "forbidden"


async def test_an_unknown_author_is_404_problem_json(client: httpx.AsyncClient, auth: Auth) -> None:
    response = await client.get(
        "/v1/authors/00000000-0000-0000-0000-000000000000", headers=auth("get-authors")
    )
    assert response.status_code == 404
    assert response.json()["code"] == "author_not_found"


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "x" * 201}, {"name": "ok", "bio": "b" * 2001}, {"bio": "no name"}],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, auth: Auth, body: dict[str, str]
) -> None:
    response = await client.post("/v1/authors", json=body, headers=auth("create-author"))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_a_taken_name_is_409(client: httpx.AsyncClient, auth: Auth) -> None:
    first = await client.post("/v1/authors", json={"name": "Le Guin"}, headers=auth("admin"))
    second = await client.post("/v1/authors", json={"name": "Le Guin"}, headers=auth("admin"))

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.json()["code"] == "duplicate_author_name"


async def test_the_list_pages_by_offset_and_by_cursor(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    for i in range(5):
        await client.post("/v1/authors", json={"name": f"Author {i}"}, headers=auth("admin"))

    first = (await client.get("/v1/authors?per_page=2", headers=auth("get-authors"))).json()
    cursor = first["meta"]["next_cursor"]
    after = await client.get(f"/v1/authors?per_page=2&cursor={cursor}", headers=auth("admin"))
    second_page = await client.get("/v1/authors?per_page=2&page=2", headers=auth("admin"))

    assert [a["name"] for a in first["data"]] == ["Author 0", "Author 1"]
    assert first["meta"] | {"next_cursor": None} == {
        "page": 1,
        "per_page": 2,
        "total": 5,
        "pages": 3,
        "next_cursor": None,
        "has_more": True,
    }
    assert after.json()["data"] == second_page.json()["data"]
    assert [a["name"] for a in after.json()["data"]] == ["Author 2", "Author 3"]


@pytest.mark.parametrize("query", ["per_page=101", "page=0", "cursor=garbage"])
async def test_a_bad_page_request_is_422(client: httpx.AsyncClient, auth: Auth, query: str) -> None:
    response = await client.get(f"/v1/authors?{query}", headers=auth("get-authors"))
    assert response.status_code == 422


async def test_search_and_name_filter(client: httpx.AsyncClient, auth: Auth) -> None:
    for name, bio in [("Ann Leckie", "Ancillary"), ("Ann Radcliffe", "Udolpho"), ("Bo", "")]:
        await client.post("/v1/authors", json={"name": name, "bio": bio}, headers=auth("admin"))

    search = await client.get("/v1/authors?search=ann", headers=auth("admin"))
    name = await client.get("/v1/authors", params={"name": "Bo"}, headers=auth("admin"))

    assert [a["name"] for a in search.json()["data"]] == ["Ann Leckie", "Ann Radcliffe"]
    assert [a["name"] for a in name.json()["data"]] == ["Bo"]
