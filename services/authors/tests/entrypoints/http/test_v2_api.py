"""v1 and v2 side by side: one resource, two representations, one version and ETag."""

from __future__ import annotations

from collections.abc import Callable

import httpx

Auth = Callable[..., dict[str, str]]


async def test_an_author_reads_in_both_versions(client: httpx.AsyncClient, auth: Auth) -> None:
    created = await client.post(
        "/v1/authors", json={"name": "Le Guin", "bio": "**Earthsea**"}, headers=auth("admin")
    )
    author = created.json()

    v1 = await client.get(f"/v1/authors/{author['id']}", headers=auth("get-authors"))
    v2 = await client.get(f"/v2/authors/{author['id']}", headers=auth("get-authors"))
    cached = await client.get(
        f"/v2/authors/{author['id']}", headers={**auth("get-authors"), "If-None-Match": '"1"'}
    )

    assert v1.json() == author
    assert v2.json()["bio"] == {
        "markdown": "**Earthsea**",
        "html": "<p><strong>Earthsea</strong></p>\n",
    }
    assert v2.json()["links"]["self"] == f"/v2/authors/{author['id']}"
    assert v2.headers["etag"] == v1.headers["etag"] == '"1"'
    assert cached.status_code == 304


async def test_v2_lists_by_cursor_only_and_books_link_their_author(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    ids = []
    for name in ("A", "B", "C"):
        ids.append(
            (await client.post("/v1/authors", json={"name": name}, headers=auth("admin"))).json()[
                "id"
            ]
        )
    book = await client.post(
        "/v1/books", json={"author_id": ids[0], "title": "T", "year": 2000}, headers=auth("admin")
    )

    first = await client.get("/v2/authors?per_page=2", headers=auth("admin"))
    rest = await client.get(
        f"/v2/authors?per_page=2&cursor={first.json()['next_cursor']}", headers=auth("admin")
    )
    offset = await client.get("/v2/authors?page=2", headers=auth("admin"))
    read = await client.get(f"/v2/books/{book.json()['id']}", headers=auth("admin"))

    assert [a["name"] for a in first.json()["data"] + rest.json()["data"]] == ["A", "B", "C"]
    assert rest.json()["next_cursor"] is None
    assert offset.status_code == 400  # no offset paging in v2
    assert read.json()["author"] == {"id": ids[0], "href": f"/v2/authors/{ids[0]}"}
    assert "author_id" not in read.json()
