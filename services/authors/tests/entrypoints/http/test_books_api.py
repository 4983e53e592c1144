"""The books API through the real app (ASGI): every operation and its statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"
MISSING = "00000000-0000-4000-8000-000000000000"


async def an_author(client: httpx.AsyncClient, auth: Auth, name: str = "Ursula") -> str:
    created = await client.post("/v1/authors", json={"name": name}, headers=auth("admin"))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert (response.json()["status"], response.json()["code"]) == (status, code)


async def test_a_book_is_created_read_listed_replaced_patched_and_deleted(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await an_author(client, auth)
    created = await client.post(
        f"/v1/authors/{author}/books",
        json={"title": "The Dispossessed", "year": 1974, "isbn": "978-0-06-051275-0"},
        headers=auth("create-author"),
    )
    assert created.status_code == 201, created.text
    book: dict[str, Any] = created.json()
    url = created.headers["location"]
    assert url == f"/v1/books/{book['id']}"
    assert (book["author_id"], book["isbn"], book["version"]) == (author, "9780060512750", 1)

    read = await client.get(url, headers=auth("get-authors"))
    assert (read.status_code, read.json(), read.headers["etag"]) == (200, book, '"1"')
    listed = await client.get(
        "/v1/books", params={"author_id": author}, headers=auth("get-authors")
    )
    assert [b["id"] for b in listed.json()["data"]] == [book["id"]]

    replaced = await client.put(
        url,
        json={"author_id": author, "title": "The Dispossessed", "year": 1975},
        headers={**auth("update-author"), "If-Match": '"1"'},
    )
    assert (replaced.status_code, replaced.json()["isbn"], replaced.json()["version"]) == (
        200,
        None,
        2,
    )
    patched = await client.patch(
        url,
        content=b'{"title": "An Ambiguous Utopia"}',
        headers={**auth("update-author"), "content-type": "application/merge-patch+json"},
    )
    assert (patched.status_code, patched.json()["title"], patched.json()["year"]) == (
        200,
        "An Ambiguous Utopia",
        1975,
    )

    deleted = await client.delete(url, headers={**auth("delete-author"), "If-Match": '"3"'})
    assert deleted.status_code == 204
    problem(await client.get(url, headers=auth("get-authors")), 404, "book_not_found")


async def test_every_refusal_of_a_book_write_has_its_status(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await an_author(client, auth)
    body = {"author_id": author, "title": "Lathe", "year": 1971, "isbn": "0-441-47812-3"}
    created = await client.post("/v1/books", json=body, headers=auth("admin"))
    url = f"/v1/books/{created.json()['id']}"

    problem(await client.post("/v1/books", json=body, headers=auth("admin")), 409, "duplicate_isbn")
    problem(
        await client.post("/v1/books", json={**body, "author_id": MISSING}, headers=auth("admin")),
        404,
        "author_not_found",
    )
    problem(
        await client.post("/v1/books", json={**body, "year": 99999}, headers=auth("admin")),
        422,
        "validation_failed",
    )
    problem(
        await client.post("/v1/books", json=body, headers=auth("get-authors")), 403, "forbidden"
    )
    problem(await client.post("/v1/books", json=body), 401, "unauthorized")
    problem(
        await client.patch(url, json={"year": 1972}, headers={**auth("admin"), "If-Match": '"7"'}),
        412,
        "precondition_failed",
    )
    problem(
        await client.patch(
            url, content=b"year=1", headers={**auth("admin"), "content-type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    )
    problem(
        await client.delete(f"/v1/books/{MISSING}", headers=auth("admin")), 404, "book_not_found"
    )
    assert (
        await client.get(url, headers={**auth("admin"), "If-None-Match": '"1"'})
    ).status_code == 304


async def test_book_lists_filter_by_author_year_and_title_and_page(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    first, second = await an_author(client, auth, "A"), await an_author(client, auth, "B")
    for author, title, year in (
        (first, "Alpha 50%", 1960),
        (first, "Beta", 1970),
        (second, "Gamma", 1980),
    ):
        made = await client.post(
            "/v1/books",
            json={"author_id": author, "title": title, "year": year},
            headers=auth("admin"),
        )
        assert made.status_code == 201, made.text

    async def titles(**params: Any) -> list[str]:
        listed = await client.get("/v1/books", params=params, headers=auth("get-authors"))
        assert listed.status_code == 200, listed.text
        return [b["title"] for b in listed.json()["data"]]

    assert await titles(author_id=first, sort="-year") == ["Beta", "Alpha 50%"]
    assert await titles(year_from=1965, year_to=1980, sort="title") == ["Beta", "Gamma"]
    assert await titles(search="50%") == ["Alpha 50%"]  # the % is a character, not a wildcard
    assert await titles(search="%") == ["Alpha 50%"]
    page = await client.get("/v1/books", params={"per_page": 2, "page": 2}, headers=auth("admin"))
    assert (page.json()["meta"]["total"], len(page.json()["data"])) == (3, 1)
    sub = await client.get(f"/v1/authors/{second}/books", headers=auth("get-authors"))
    assert [b["title"] for b in sub.json()["data"]] == ["Gamma"]
    problem(
        await client.get(f"/v1/authors/{MISSING}/books", headers=auth("get-authors")),
        404,
        "author_not_found",
    )
