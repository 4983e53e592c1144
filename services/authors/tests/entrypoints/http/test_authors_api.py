"""The authors API through the real app (ASGI), on SQLite and PostgreSQL: every status."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gatehouse.authors.app import create_app
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.events import CloudEvent, EventBus
from gatehouse.common.tokens import JWTVerifier

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"


async def make(client: httpx.AsyncClient, auth: Auth, name: str, bio: str = "") -> dict[str, Any]:
    created = await client.post(
        "/v1/authors", json={"name": name, "bio": bio}, headers=auth("admin")
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


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
    assert created.headers["etag"] == '"1"'
    assert (body["name"], body["bio"], body["version"]) == ("N. K. Jemisin", "Broken Earth", 1)
    read = await client.get(created.headers["location"], headers=auth("get-authors"))
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["etag"] == '"1"'


async def test_each_change_reaches_the_bus_with_the_resource_and_traceparent(
    client: httpx.AsyncClient, auth: Auth, bus: EventBus
) -> None:
    received: asyncio.Queue[CloudEvent] = asyncio.Queue()

    async def handler(event: CloudEvent) -> None:
        await received.put(event)

    await bus.subscribe("gatehouse.author.*", handler)
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    created = await client.post(
        "/v1/authors", json={"name": "Iain Banks"}, headers={**auth("admin"), "traceparent": trace}
    )
    author = created.json()
    patched = await client.patch(
        f"/v1/authors/{author['id']}", json={"bio": "Culture"}, headers=auth("admin")
    )
    deleted = await client.delete(f"/v1/authors/{author['id']}", headers=auth("admin"))

    events = [await asyncio.wait_for(received.get(), timeout=5) for _ in range(3)]
    assert [e.type for e in events] == [
        "gatehouse.author.created",
        "gatehouse.author.updated",
        "gatehouse.author.deleted",
    ]
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].data == author
    assert events[1].data == patched.json()
    assert events[0].traceparent == trace
    assert events[1].traceparent
    assert events[1].traceparent != trace
    assert deleted.status_code == 204
    assert events[2].data["id"] == author["id"]


async def test_without_a_valid_token_it_is_401_and_without_the_role_403(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    missing = await client.get("/v1/authors")
    forged = await client.get("/v1/authors", headers={"Authorization": "Bearer not.a.jwt"})
    refused = await client.post("/v1/authors", json={}, headers=auth("get-authors"))

    for response in (missing, forged):
        problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    problem(refused, 403, "forbidden")  # before the body is looked at


async def test_names_that_only_look_different_are_a_409(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    await make(client, auth, "Léo Octavia")

    for same in (
        unicodedata.normalize("NFD", "Léo Octavia"),
        "léo octavia\u200b",
        "LÉO\u00a0OCTAVIA",
    ):
        clash = await client.post("/v1/authors", json={"name": same}, headers=auth("admin"))
        problem(clash, 409, "duplicate_author_name")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a\u0000b"}, "name"),
        ({"name": "bell\u0007"}, "name"),
        ({"name": "ok", "bio": "nul \u0000"}, "bio"),
        ({"name": "\u200b\u00a0"}, "name"),
    ],
)
async def test_text_that_could_corrupt_data_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: Auth, body: dict[str, str], field: str
) -> None:
    refused = await client.post("/v1/authors", json=body, headers=auth("admin"))

    assert problem(refused, 422, "invalid_text")["field"] == field
    assert (await client.get("/v1/authors", headers=auth("admin"))).json()["data"] == []


async def test_an_overlong_name_is_a_422_naming_the_field(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    refused = await client.post("/v1/authors", json={"name": "x" * 201}, headers=auth("admin"))
    assert problem(refused, 422, "validation_failed")["errors"][0]["loc"] == ["body", "name"]


async def test_a_lone_surrogate_in_json_is_refused_not_stored(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    raw = b'{"name": "half \\ud800 a pair"}'
    refused = await client.post(
        "/v1/authors", content=raw, headers={**auth("admin"), "content-type": "application/json"}
    )
    assert refused.status_code == 422


async def test_html_in_a_markdown_bio_is_sanitised(client: httpx.AsyncClient, auth: Auth) -> None:
    bio = '> *quote* & **bold** <b>ok</b><script>alert(1)</script><a href="javascript:x">l</a>'

    author = await make(client, auth, "Markdown", bio)

    assert author["bio"] == '> *quote* & **bold** <b>ok</b><a rel="noopener noreferrer">l</a>'
    again = await client.put(
        f"/v1/authors/{author['id']}",
        json={"name": "Markdown", "bio": author["bio"]},
        headers=auth("admin"),
    )
    assert again.json()["version"] == 1  # cleaning is idempotent: nothing changed


async def test_etag_if_none_match_is_304_and_a_stale_if_match_is_412(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "Le Guin")
    url = f"/v1/authors/{author['id']}"

    cached = await client.get(url, headers={**auth("admin"), "If-None-Match": '"1"'})
    patched = await client.patch(
        url, json={"bio": "Earthsea"}, headers={**auth("admin"), "If-Match": '"1"'}
    )
    stale = await client.put(
        url, json={"name": "Le Guin", "bio": "x"}, headers={**auth("admin"), "If-Match": '"1"'}
    )
    stale_delete = await client.delete(url, headers={**auth("admin"), "If-Match": '"1"'})
    weak = await client.patch(
        url, json={"bio": "y"}, headers={**auth("admin"), "If-Match": 'W/"2"'}
    )
    changed = await client.get(url, headers={**auth("admin"), "If-None-Match": '"1"'})

    assert (cached.status_code, cached.headers["etag"], cached.content) == (304, '"1"', b"")
    assert (patched.status_code, patched.headers["etag"]) == (200, '"2"')
    assert problem(stale, 412, "precondition_failed")["current_version"] == 2
    problem(stale_delete, 412, "precondition_failed")
    problem(weak, 412, "precondition_failed")
    assert (changed.status_code, changed.json()["bio"]) == (200, "Earthsea")


async def test_merge_patch_media_type_and_null_empties_the_bio(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "Le Guin", "Earthsea")

    patched = await client.patch(
        f"/v1/authors/{author['id']}",
        content=b'{"bio": null}',
        headers={**auth("admin"), "content-type": "application/merge-patch+json"},
    )

    assert (patched.status_code, patched.json()["bio"], patched.json()["name"]) == (
        200,
        "",
        "Le Guin",
    )


async def test_an_idempotent_post_replays_and_a_reused_key_is_422(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    keyed = {**auth("admin"), "Idempotency-Key": "order-42"}

    first = await client.post("/v1/authors", json={"name": "Le Guin"}, headers=keyed)
    again = await client.post("/v1/authors", json={"name": "Le Guin"}, headers=keyed)
    other = await client.post("/v1/authors", json={"name": "Someone"}, headers=keyed)
    bad = await client.post(
        "/v1/authors", json={"name": "X"}, headers={**auth("admin"), "Idempotency-Key": "a b"}
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    problem(other, 422, "idempotency_key_reused")
    problem(bad, 400, "invalid_parameter")


async def test_deleting_an_author_with_books_is_a_409_then_works_once_they_are_gone(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "Le Guin")
    book = await client.post(
        f"/v1/authors/{author['id']}/books",
        json={"title": "Earthsea", "year": 1968},
        headers=auth("admin"),
    )

    refused = await client.delete(f"/v1/authors/{author['id']}", headers=auth("admin"))
    await client.delete(f"/v1/books/{book.json()['id']}", headers=auth("admin"))
    deleted = await client.delete(f"/v1/authors/{author['id']}", headers=auth("admin"))
    gone = await client.get(f"/v1/authors/{author['id']}", headers=auth("admin"))

    assert problem(refused, 409, "author_has_books")["books"] == 1
    assert deleted.status_code == 204
    problem(gone, 404, "author_not_found")


async def test_lists_page_filter_and_sort(client: httpx.AsyncClient, auth: Auth) -> None:
    for name in ("Carol", "alice", "Bob"):
        await make(client, auth, name)

    by_name = await client.get("/v1/authors?sort=name&per_page=2", headers=auth("admin"))
    page_two = await client.get("/v1/authors?sort=name&per_page=2&page=2", headers=auth("admin"))
    follow = await client.get(
        f"/v1/authors?sort=name&per_page=2&cursor={by_name.json()['meta']['next_cursor']}",
        headers=auth("admin"),
    )
    searched = await client.get("/v1/authors?search=O", headers=auth("admin"))

    assert [a["name"] for a in by_name.json()["data"]] == ["alice", "Bob"]
    assert by_name.json()["meta"] == {
        "page": 1,
        "per_page": 2,
        "total": 3,
        "pages": 2,
        "next_cursor": by_name.json()["meta"]["next_cursor"],
        "has_more": True,
    }
    assert [a["name"] for a in page_two.json()["data"]] == ["Carol"]
    assert [a["name"] for a in follow.json()["data"]] == ["Carol"]
    assert follow.json()["meta"]["page"] is None
    assert sorted(a["name"] for a in searched.json()["data"]) == ["Bob", "Carol"]


@pytest.mark.parametrize(
    "query",
    [
        "page=9223372036854775807",
        "page=0",
        "per_page=1000",
        "per_page=-1",
        "cursor=%25%25",
        "cursor=eyJzIjoibmFtZSIsInYiOlsxXX0",
        "sort=bio",
        "id=not-a-uuid",
        "created_after=2025-01-01T00:00:00",
    ],
)
async def test_out_of_range_or_malformed_parameters_are_a_400(
    client: httpx.AsyncClient, auth: Auth, query: str
) -> None:
    problem(
        await client.get(f"/v1/authors?{query}", headers=auth("admin")), 400, "invalid_parameter"
    )


async def test_unknown_query_parameters_are_a_400_naming_them(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "X")
    listed = await client.get("/v1/authors?nmae=X&zzz=1", headers=auth("admin"))
    read = await client.get(f"/v1/authors/{author['id']}?expand=books", headers=auth("admin"))

    assert problem(listed, 400, "invalid_parameter")["parameter"] == "nmae, zzz"
    assert problem(read, 400, "invalid_parameter")["parameter"] == "expand"


async def test_bodies_malformed_of_another_type_or_against_the_schema(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    json_type = {**auth("admin"), "content-type": "application/json"}
    malformed = await client.post("/v1/authors", content=b'{"name":', headers=json_type)
    other_type = await client.post(
        "/v1/authors", content=b"name=x", headers={**auth("admin"), "content-type": "text/plain"}
    )
    extra = await client.post("/v1/authors", json={"name": "x", "age": 3}, headers=auth("admin"))
    wrong = await client.post("/v1/authors", json={"name": 3}, headers=auth("admin"))

    problem(malformed, 400, "malformed_json")
    problem(other_type, 415, "unsupported_media_type")
    assert problem(extra, 422, "validation_failed")["errors"][0]["loc"] == ["body", "age"]
    problem(wrong, 422, "validation_failed")


async def test_a_method_the_path_does_not_serve_is_405_with_the_right_allow(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "X")
    collection = await client.delete("/v1/authors", headers=auth("admin"))
    item = await client.post(f"/v1/authors/{author['id']}", headers=auth("admin"))

    problem(collection, 405, "method_not_allowed")
    assert collection.headers["allow"] == "GET, POST"
    assert item.headers["allow"] == "GET, PUT, PATCH, DELETE"


async def test_unknown_paths_and_malformed_ids_are_404(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    problem(await client.get("/v1/nothing", headers=auth("admin")), 404, "not_found")
    problem(await client.get("/v1/authors/not-a-uuid", headers=auth("admin")), 404, "not_found")
    missing = "/v1/authors/00000000-0000-4000-8000-000000000000"
    problem(await client.get(missing, headers=auth("admin")), 404, "author_not_found")


async def test_the_audit_names_the_client_behind_a_chain_of_trusted_proxies(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    # The ASGI peer is 127.0.0.1 (a trusted proxy by default); so is the last hop it
    # names: the client is the right-most hop that is not a proxy of ours.
    chain = {"X-Forwarded-For": "192.0.2.66, 203.0.113.5, 127.0.0.2"}
    created = await make_with(client, {**auth("admin"), **chain}, "Ursula")

    audit = await client.get(
        "/v1/audit", params={"entity_id": created["id"]}, headers=auth("view-audit-logs")
    )
    assert [r["client_ip"] for r in audit.json()["data"]] == ["203.0.113.5"]


async def make_with(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> Any:
    created = await client.post("/v1/authors", json={"name": name}, headers=headers)
    assert created.status_code == 201, created.text
    return created.json()


async def test_refused_writes_are_audited_whoever_refused_them(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "Ursula")
    url = f"/v1/authors/{author['id']}"
    viewer = {**auth("get-authors"), "User-Agent": "probe/1"}

    await client.delete(url, headers=viewer)  # 403 at the route
    await client.patch(url, json={"name": 5}, headers=auth("admin"))  # 422 of the schema
    await client.patch(url, json={"bio": "x"}, headers={**auth("admin"), "If-Match": '"9"'})

    audit = await client.get(
        "/v1/audit", params={"outcome": "refused"}, headers=auth("view-audit-logs")
    )
    assert audit.status_code == 200, audit.text
    assert [
        (r["action"], r["entity_id"], r["refusal"]["status"], r["refusal"]["fields"])
        for r in reversed(audit.json()["data"])
    ] == [
        ("deleted", author["id"], 403, []),
        ("updated", author["id"], 422, ["name"]),
        ("updated", author["id"], 412, ["bio"]),
    ]
    assert audit.json()["data"][-1]["user_agent"] == "probe/1"
    changes = await client.get("/v1/audit", headers=auth("view-audit-logs"))
    assert [r["outcome"] for r in changes.json()["data"]] == ["succeeded"]


async def test_with_if_match_required_a_blind_write_is_a_428_and_audited(
    settings: AuthorsSettings, verifier: JWTVerifier, auth: Auth
) -> None:
    strict = settings.model_copy(update={"require_if_match": True})
    app = create_app(strict, verifier=verifier)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
            author = await make(client, auth, "Ursula")
            url = f"/v1/authors/{author['id']}"

            problem(await client.delete(url, headers=auth("admin")), 428, "precondition_required")
            patched = await client.patch(
                url, json={"bio": "x"}, headers={**auth("admin"), "If-Match": '"1"'}
            )
            refusals = await client.get(
                "/v1/audit", params={"outcome": "refused"}, headers=auth("admin")
            )

    assert patched.status_code == 200
    assert [(r["action"], r["refusal"]["status"]) for r in refusals.json()["data"]] == [
        ("deleted", 428)
    ]
