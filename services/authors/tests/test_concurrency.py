"""Races through the HTTP API on SQLite and PostgreSQL: names unique under normalisation,
one ETag for two writers, one idempotency key raced."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

Auth = Callable[..., dict[str, str]]


async def make(client: httpx.AsyncClient, auth: Auth, name: str) -> dict[str, Any]:
    created = await client.post("/v1/authors", json={"name": name}, headers=auth("admin"))
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def test_twenty_concurrent_creates_of_one_name_are_one_201_and_nineteen_409(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    spellings = ["Octavia Butler", "octavia butler", "Octavia Butler\u200b", "OCTAVIA BUTLER"]
    answers = await asyncio.gather(
        *(
            client.post("/v1/authors", json={"name": spellings[i % 4]}, headers=auth("admin"))
            for i in range(20)
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 19
    listed = await client.get("/v1/authors", headers=auth("admin"))
    assert listed.json()["meta"]["total"] == 1


async def test_two_patches_with_one_etag_are_one_200_and_one_412(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    author = await make(client, auth, "Le Guin")
    headers = {**auth("admin"), "If-Match": '"1"'}

    answers = await asyncio.gather(
        *(
            client.patch(f"/v1/authors/{author['id']}", json={"bio": bio}, headers=headers)
            for bio in ("one", "two")
        )
    )

    assert sorted(a.status_code for a in answers) == [200, 412]


async def test_an_idempotent_post_raced_ten_times_writes_once(
    client: httpx.AsyncClient, auth: Auth
) -> None:
    keyed = {**auth("admin"), "Idempotency-Key": "raced"}

    answers = await asyncio.gather(
        *(client.post("/v1/authors", json={"name": "Le Guin"}, headers=keyed) for _ in range(10))
    )

    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    audit = await client.get("/v1/audit", headers=auth("admin"))
    assert len(audit.json()["data"]) == 1
