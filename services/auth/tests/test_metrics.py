"""The auth metrics that alerts and the dashboard query move with what users do."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .conftest import DEMO_PASSWORD

Scrape = dict[tuple[str, str], float]


async def scrape(client: httpx.AsyncClient) -> Scrape:
    text = (await client.get("/metrics")).text
    return {
        (sample.name, sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("gatehouse_auth_")
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def moved(before: Scrape, after: Scrape) -> Scrape:
    return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}


async def test_logins_and_refreshes_are_counted_by_outcome(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert ("gatehouse_auth_lockouts_total", "") in before
    await client.post("/auth/token", json={"username": "viewer", "password": "wrong"})
    good = await client.post("/auth/token", json={"username": "viewer", "password": DEMO_PASSWORD})
    first = good.json()["refresh_token"]
    await client.post("/auth/refresh", json={"refresh_token": first})
    await client.post("/auth/refresh", json={"refresh_token": "never-issued"})
    assert moved(before, await scrape(client)) == {
        ("gatehouse_auth_logins_total", "failure"): 1,
        ("gatehouse_auth_logins_total", "success"): 1,
        ("gatehouse_auth_refreshes_total", "success"): 1,
        ("gatehouse_auth_refreshes_total", "invalid"): 1,
    }


async def test_throttled_logins_are_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for _ in range(6):
        await client.post("/auth/token", json={"username": "nobody", "password": "wrong"})
    assert moved(before, await scrape(client)) == {
        ("gatehouse_auth_logins_total", "failure"): 5,
        ("gatehouse_auth_logins_total", "throttled"): 1,
    }


async def test_retries_and_reuse_of_refresh_tokens_are_counted(client: httpx.AsyncClient) -> None:
    good = await client.post("/auth/token", json={"username": "editor", "password": DEMO_PASSWORD})
    first = {"refresh_token": good.json()["refresh_token"]}
    before = await scrape(client)
    second = await client.post("/auth/refresh", json=first)
    await client.post("/auth/refresh", json=first)  # a retry within the window
    await client.post("/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    await client.post("/auth/refresh", json=first)  # reuse: its successor was used
    assert moved(before, await scrape(client)) == {
        ("gatehouse_auth_refreshes_total", "success"): 2,
        ("gatehouse_auth_refreshes_total", "grace"): 1,
        ("gatehouse_auth_refreshes_total", "reused"): 1,
    }
