"""The revocation list the gateway polls: ``GET /internal/revocations`` (CONTRACTS.md)."""

from __future__ import annotations

import httpx
import pytest

from gatehouse.auth.embedded.revocations import LEEWAY, OVERLAP, SESSION, SUBJECT, RevocationLog

from .conftest import Clock, migrated_engine
from .test_api import PROBLEM, login

ACCESS_TTL = 300  # the default GATEHOUSE_AUTH_ACCESS_TTL of the client fixture


async def revoked(client: httpx.AsyncClient, after: str | None = None) -> dict[str, object]:
    params = {"after": after} if after is not None else {}
    response = await client.get("/internal/revocations", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    assert set(body) == {"items", "cursor"}
    return body


def session_ids(body: dict[str, object]) -> set[str]:
    items = body["items"]
    assert isinstance(items, list)
    return {item["id"] for item in items if item["kind"] == SESSION}


async def session_of(client: httpx.AsyncClient, tokens: dict[str, str]) -> str:
    claims = await client.post(
        "/realms/gatehouse/protocol/openid-connect/token/introspect",
        data={"client_id": "gatehouse", "token": tokens["access_token"]},
    )
    sid: str = claims.json()["sid"]
    return sid


async def test_a_logout_is_listed_until_its_last_access_token_expires(
    client: httpx.AsyncClient,
) -> None:
    tokens = await login(client)
    sid = await session_of(client, tokens)
    assert sid not in session_ids(await revoked(client))
    await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    body = await revoked(client)
    (item,) = [i for i in body["items"] if i["id"] == sid]  # type: ignore[union-attr]
    assert item["kind"] == "session"
    assert item["expires_at"] == pytest.approx(item["revoked_at"] + ACCESS_TTL + LEEWAY)


async def test_a_reused_refresh_token_lists_its_session(client: httpx.AsyncClient) -> None:
    tokens = await login(client)
    sid = await session_of(client, tokens)
    second = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    # Its successor used, the first token is no retry within the grace window: reuse.
    await client.post("/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    reused = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 401
    assert sid in session_ids(await revoked(client))


async def test_logging_out_twice_lists_the_session_once(client: httpx.AsyncClient) -> None:
    tokens = await login(client)
    for _ in range(2):
        await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    items = (await revoked(client))["items"]
    assert isinstance(items, list)
    assert len(items) == 1


async def test_the_cursor_moves_on_but_not_past_a_late_commit(client: httpx.AsyncClient) -> None:
    first = await login(client)
    await client.post("/auth/logout", json={"refresh_token": first["refresh_token"]})
    page = await revoked(client)
    again = await revoked(client, str(page["cursor"]))
    # Within OVERLAP seconds of the answer the same items come again: a reader that
    # polled just before a slow transaction committed still gets it.
    assert session_ids(again) == session_ids(page)


@pytest.mark.parametrize("cursor", ["yesterday", "nan", "-1", "inf", "1" * 40])
async def test_a_cursor_it_did_not_hand_out_is_a_problem(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get("/internal/revocations", params={"after": cursor})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM


async def test_the_list_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/internal")]


async def test_items_come_once_past_the_overlap_and_go_at_expiry(database_url: str) -> None:
    clock = Clock()
    async with migrated_engine(database_url) as engine:
        log = RevocationLog(engine, 60, clock=clock)
        await log.add(SESSION, "s1")
        page = await log.since(None)
        assert [r.id for r in page.items] == ["s1"]
        clock.now += OVERLAP + 1
        page = await log.since(page.cursor)  # still in the overlap of the first answer
        await log.add(SUBJECT, "u1")
        page = await log.since(page.cursor)
        assert [(r.kind, r.id) for r in page.items] == [(SUBJECT, "u1")]
        clock.now += 60 + LEEWAY
        assert (await log.since(None)).items == []


async def test_a_late_commit_within_the_overlap_is_not_skipped(database_url: str) -> None:
    clock = Clock()
    async with migrated_engine(database_url) as engine:
        log = RevocationLog(engine, 60, clock=clock)
        page = await log.since(None)
        # stamped before the reader's poll, committed after it
        clock.now -= OVERLAP / 2
        await log.add(SESSION, "late")
        clock.now += OVERLAP
        assert [r.id for r in (await log.since(page.cursor)).items] == ["late"]


async def test_a_full_page_hands_out_a_cursor_that_goes_on(database_url: str) -> None:
    clock = Clock()
    async with migrated_engine(database_url) as engine:
        log = RevocationLog(engine, 600, clock=clock, page_size=2)
        for n in range(5):
            await log.add(SESSION, f"s{n}")
            clock.now += 1
        seen: set[str] = set()
        cursor = None
        for _ in range(6):
            page = await log.since(cursor)
            seen |= {r.id for r in page.items}
            cursor = page.cursor
        assert seen == {f"s{n}" for n in range(5)}
