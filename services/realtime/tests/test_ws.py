"""The WebSocket protocol over a real uvicorn server and a real ``websockets`` client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gatehouse.common.events import CloudEvent, InMemoryEventBus

VIEWER = ("get-authors",)
AUTHOR_7 = "00000000-0000-4000-8000-000000000007"
AUTHOR_9 = "00000000-0000-4000-8000-000000000009"


def author_created(author_id: str) -> CloudEvent:
    return CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.created",
        subject=author_id,
        data={"id": author_id, "name": "Ada"},
    )


async def test_header_auth_then_subscribe(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token(roles=VIEWER)) as client:
        reply = await client.call(id="1", op="subscribe", channel="authors")
    assert reply == {"id": "1", "ok": True, "result": {"channel": "authors"}}


@pytest.mark.parametrize("token", ["not-a-jwt", "forged"], ids=["malformed", "foreign-key"])
async def test_a_bad_header_token_closes_with_1008(
    issuer: Any, start_realtime: Any, token: str
) -> None:
    if token == "forged":
        token = issuer.forged_token()
    async with start_realtime() as rt, rt.connect(token) as client:
        assert await client.close_code() == 1008


@pytest.mark.parametrize(
    "auth", [{"type": "auth"}, {"op": "auth", "id": "a1"}], ids=["template", "op"]
)
async def test_first_message_auth(issuer: Any, start_realtime: Any, auth: dict[str, str]) -> None:
    async with start_realtime() as rt, rt.connect() as client:
        authed = await client.call(**auth, token=issuer.token(sub="viewer-1", roles=VIEWER))
        subscribed = await client.call(id=2, op="subscribe", channel=f"authors.{AUTHOR_9}")
    assert authed["ok"] is True
    assert authed["id"] == auth.get("id")
    assert authed["result"]["subject"] == "viewer-1"
    assert subscribed == {"id": 2, "ok": True, "result": {"channel": f"authors.{AUTHOR_9}"}}


async def test_no_auth_message_in_time_closes_with_1008(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime(auth_timeout=0.2) as rt, rt.connect() as client:
        assert await client.close_code() == 1008


async def test_a_bad_first_message_token_is_answered_then_closed_with_1008(
    issuer: Any, start_realtime: Any
) -> None:
    async with start_realtime() as rt, rt.connect() as client:
        reply = await client.call(type="auth", token="forged")
        code = await client.close_code()
    assert reply["ok"] is False
    assert reply["error"]["code"] == "unauthorized"
    assert code == 1008


async def test_requests_before_auth_are_refused(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt, rt.connect() as client:
        reply = await client.call(id="s", op="subscribe", channel="authors")
        code = await client.close_code()
    assert reply["error"]["code"] == "unauthorized"
    assert code == 1008


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_request"),
        ('["a list"]', "bad_request"),
        ('{"id": "x", "op": "explode"}', "bad_request"),
        ('{"id": "x", "op": "subscribe"}', "bad_request"),
        ('{"id": "x", "op": "ping", "pad": "' + "x" * 70_000 + '"}', "payload_too_large"),
        (b"\x00binary", "bad_request"),
    ],
    ids=["invalid-json", "not-an-object", "unknown-op", "no-channel", "too-large", "binary"],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(
    issuer: Any, start_realtime: Any, frame: str | bytes, code: str
) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token()) as client:
        await client.send(frame)
        error = await client.receive()
        pong = await client.call(id="p", op="ping")
    assert error["ok"] is False
    assert error["error"]["code"] == code
    assert error["error"]["message"]
    assert pong == {"id": "p", "ok": True, "result": "pong"}


async def test_subscribing_without_the_role_is_forbidden(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token(roles=())) as client:
        reply = await client.call(id="1", op="subscribe", channel="authors")
        unknown = await client.call(id="2", op="subscribe", channel="secrets")
        pong = await client.call(id="3", op="ping")
    assert reply["ok"] is False
    assert reply["error"]["code"] == "forbidden"
    assert unknown["error"]["code"] == "not_found"
    assert pong["result"] == "pong"


async def test_admin_may_subscribe_to_every_channel(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token(roles=("admin",))) as client:
        reply = await client.call(id="1", op="subscribe", channel="authors")
    assert reply["ok"] is True


async def test_events_reach_the_subscribers_of_their_channels(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    token = issuer.token(roles=VIEWER)
    async with (
        start_realtime(bus=bus) as rt,
        rt.connect(token) as all_authors,
        rt.connect(token) as author_7,
    ):
        await all_authors.call(id="1", op="subscribe", channel="authors")
        await author_7.call(id="1", op="subscribe", channel=f"authors.{AUTHOR_7}")
        event = author_created(AUTHOR_7)
        await bus.publish(event)
        pushed = await all_authors.receive()
        pushed_7 = await author_7.receive()
    assert pushed["type"] == "event"
    assert pushed["channel"] == "authors"
    assert pushed["event"]["id"] == event.id
    assert pushed["event"]["data"] == {"id": AUTHOR_7, "name": "Ada"}
    assert pushed_7["channel"] == f"authors.{AUTHOR_7}"


async def test_unsubscribe_stops_the_events(issuer: Any, start_realtime: Any) -> None:
    bus = InMemoryEventBus()
    token = issuer.token(roles=VIEWER)
    async with (
        start_realtime(bus=bus) as rt,
        rt.connect(token) as leaver,
        rt.connect(token) as witness,
    ):
        await leaver.call(id="1", op="subscribe", channel="authors")
        await witness.call(id="1", op="subscribe", channel="authors")
        left = await leaver.call(id="2", op="unsubscribe", channel="authors")
        await bus.publish(author_created(AUTHOR_7))
        await witness.receive()  # the event has been fanned out to every subscriber
        after = await leaver.call(id="3", op="ping")
    assert left == {"id": "2", "ok": True, "result": {"channel": "authors"}}
    assert after == {"id": "3", "ok": True, "result": "pong"}


async def test_the_subscription_limit_holds(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime(max_subscriptions=1) as rt, rt.connect(issuer.token()) as client:
        await client.call(id="1", op="subscribe", channel="authors")
        again = await client.call(id="2", op="subscribe", channel="authors")
        second = await client.call(id="3", op="subscribe", channel="books")
    assert again["error"]["code"] == "already_subscribed"
    assert second["error"]["code"] == "subscription_limit"


async def test_message_flood_is_refused_then_closed_with_1008(
    issuer: Any, start_realtime: Any
) -> None:
    limits = {"message_rate": 0.5, "message_burst": 2, "rate_limit_strikes": 3}
    async with start_realtime(**limits) as rt, rt.connect(issuer.token()) as client:
        replies = [await client.call(id=n, op="ping") for n in range(3)]
        for n in range(3, 10):
            await client.send({"id": n, "op": "ping"})
        code = await client.close_code()
    assert [r["ok"] for r in replies] == [True, True, False]
    assert replies[2]["error"]["code"] == "rate_limited"
    assert code == 1008


async def test_an_expired_token_closes_the_socket_with_4001(
    issuer: Any, start_realtime: Any
) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token(ttl=0.5)) as client:
        assert await client.close_code() == 4001


async def test_a_refreshed_token_keeps_the_socket_open(issuer: Any, start_realtime: Any) -> None:
    # exp is whole seconds: a ttl of 2 expires between 1 and 2 seconds from now.
    async with start_realtime() as rt, rt.connect(issuer.token(ttl=2)) as client:
        refreshed = await client.call(id="r", op="auth", token=issuer.token(ttl=60))
        await asyncio.sleep(2.2)
        pong = await client.call(id="p", op="ping")
    assert refreshed["ok"] is True
    assert pong["result"] == "pong"


async def test_a_refresh_for_another_user_is_refused(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token(sub="alice")) as client:
        reply = await client.call(id="r", op="auth", token=issuer.token(sub="mallory"))
        pong = await client.call(id="p", op="ping")
    assert reply["error"]["code"] == "forbidden"
    assert pong["result"] == "pong"


async def test_a_refresh_without_the_role_drops_the_subscription(
    issuer: Any, start_realtime: Any
) -> None:
    async with start_realtime() as rt, rt.connect(issuer.token()) as client:
        await client.call(id="1", op="subscribe", channel="authors")
        reply = await client.call(id="2", op="auth", token=issuer.token(roles=()))
    assert reply["result"]["revoked"] == ["authors"]


async def test_shutdown_closes_clients_with_1012(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime() as rt:
        client_cm = rt.connect(issuer.token())
        client = await client_cm.__aenter__()
    try:
        assert await client.close_code() == 1012
    finally:
        await client_cm.__aexit__(None, None, None)
