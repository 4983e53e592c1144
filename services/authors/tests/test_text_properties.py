"""Property: no string a client can send is stored differently from what a later GET
returns, and none causes a 5xx (names, bios, titles, filters)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatehouse.authors.adapters.markdown import sanitise
from gatehouse.authors.domain import text
from gatehouse.authors.domain.errors import InvalidText

Auth = Callable[..., dict[str, str]]
# Every code point, lone surrogates included (JSON can carry them as \\ud800 escapes).
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)
# make test runs a few examples per property; GATEHOUSE_HYPOTHESIS_EXAMPLES=500 searches harder.
EXAMPLES = int(os.environ.get("GATEHOUSE_HYPOTHESIS_EXAMPLES", "10"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def raw_json(body: dict[str, object]) -> bytes:
    return json.dumps(body, ensure_ascii=True).encode()  # escapes surrogates


def query_value(value: str) -> str:
    """Percent-encoded UTF-8; a lone surrogate goes as the invalid bytes a client can send
    (httpx refuses to encode it: hypothesis found that, not a server fault)."""
    return quote(value, safe="", errors="surrogatepass")


@SETTINGS
@given(name=ANY_TEXT, bio=ANY_TEXT)
async def test_any_author_is_refused_or_stored_as_a_later_get_returns_it(
    client: httpx.AsyncClient, auth: Auth, name: str, bio: str
) -> None:
    headers = {**auth("admin"), "content-type": "application/json"}
    created = await client.post(
        "/v1/authors", content=raw_json({"name": name, "bio": bio}), headers=headers
    )

    assert created.status_code < 500, created.text
    if created.status_code != 201:
        assert created.status_code in (409, 422), created.text
        return
    body = created.json()
    assert body["name"] == text.clean(name, "name", max_length=200)
    assert body["bio"] == sanitise(text.clean(bio, "bio", max_length=4000, multiline=True))
    read = await client.get(f"/v1/authors/{body['id']}", headers=auth("admin"))
    assert read.json() == body
    found = await client.get("/v1/authors", params={"name": name}, headers=auth("admin"))
    assert body["id"] in [a["id"] for a in found.json()["data"]]
    again = await client.put(
        f"/v1/authors/{body['id']}",
        content=raw_json({"name": body["name"], "bio": body["bio"]}),
        headers=headers,
    )
    assert again.json()["version"] == 1  # what was stored goes back unchanged
    await client.delete(f"/v1/authors/{body['id']}", headers=auth("admin"))


@SETTINGS
@given(title=ANY_TEXT, search=ANY_TEXT, isbn=ANY_TEXT)
async def test_any_book_text_or_filter_is_never_a_5xx(
    client: httpx.AsyncClient, auth: Auth, title: str, search: str, isbn: str
) -> None:
    headers = {**auth("admin"), "content-type": "application/json"}
    author = await client.post("/v1/authors", content=raw_json({"name": "Shelf"}), headers=headers)
    author_id = (
        author.json()["id"]
        if author.status_code == 201
        else (await client.get("/v1/authors?name=Shelf", headers=headers)).json()["data"][0]["id"]
    )
    book = await client.post(
        "/v1/books",
        content=raw_json({"author_id": author_id, "title": title, "year": 2000, "isbn": isbn}),
        headers=headers,
    )
    listed = await client.get(
        f"/v1/books?search={query_value(search)}&title={query_value(title)}",
        headers=auth("admin"),
    )

    assert book.status_code in (201, 409, 422), book.text
    assert listed.status_code in (200, 400), listed.text
    if book.status_code == 201:
        read = await client.get(f"/v1/books/{book.json()['id']}", headers=auth("admin"))
        assert read.json() == book.json()
        await client.delete(f"/v1/books/{book.json()['id']}", headers=auth("admin"))


def test_the_key_of_a_stored_name_is_stable() -> None:
    """Normalising twice changes nothing (what is stored keys the same as what was sent)."""

    @given(ANY_TEXT)
    def check(value: str) -> None:
        try:
            stored = text.clean(value, "name", max_length=200)
        except InvalidText:
            return
        assert text.clean(stored, "name", max_length=200) == stored
        assert text.key(stored) == text.key(value)

    check()
