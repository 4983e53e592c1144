"""WebSocket proxying to a real upstream: handshake auth, frames both ways, close codes."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .conftest import config_for, serve


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


async def test_frames_flow_both_ways_with_headers_forwarded(start_gateway, issuer, upstream):
    headers = issuer.bearer(["get-authors"])
    async with (
        start_gateway(config_for(upstream.url)) as url,
        connect(ws_url(url), additional_headers=headers) as ws,
    ):
        hello = json.loads(await ws.recv())
        await ws.send("hi")
        text = await ws.recv()
        await ws.send(b"\x00\x01")
        binary = await ws.recv()
    assert hello["headers"]["authorization"] == headers["Authorization"]
    assert "x-forwarded-for" in hello["headers"]
    assert text == "echo:hi"
    assert binary == b"echo:\x00\x01"


async def test_first_message_auth_is_checked_then_forwarded(start_gateway, issuer, upstream):
    token = issuer.token(["get-authors"], sub="browser")
    async with start_gateway(config_for(upstream.url)) as url, connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        hello = json.loads(await ws.recv())
        forwarded = await ws.recv()
    assert "authorization" not in hello["headers"]
    assert hello["headers"]["x-gatehouse-user-id"] == "browser"
    assert forwarded == "echo:" + json.dumps({"type": "auth", "token": token})


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ('{"op": "subscribe", "channel": "authors"}', 1008),
        ('{"type": "auth", "token": "forged"}', 1008),
        ("x" * 70_000, 1009),
    ],
)
async def test_anonymous_sockets_get_nothing_but_an_auth_message(
    start_gateway, upstream, first, code
) -> None:
    async with start_gateway(config_for(upstream.url)) as url, connect(ws_url(url)) as ws:
        await ws.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    assert upstream.seen == []  # no upstream socket was opened for them


async def test_an_anonymous_socket_that_says_nothing_is_closed(start_gateway, upstream) -> None:
    limits = {"ws_auth_timeout": 0.2}
    async with (
        start_gateway(config_for(upstream.url, limits=limits)) as url,
        connect(ws_url(url)) as ws,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "authentication timeout")


@pytest.mark.parametrize("value", ["Bearer forged.token.value", "Basic abc"])
async def test_bad_credentials_are_refused_at_the_handshake(start_gateway, upstream, value):
    async with start_gateway(config_for(upstream.url)) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(url), additional_headers={"Authorization": value}):
                pass
    assert refused.value.response.status_code == 401
    assert upstream.seen == []


async def test_missing_role_is_refused_at_the_handshake(start_gateway, issuer, upstream) -> None:
    config = config_for(upstream.url)
    routes = tuple(
        r.model_copy(update={"roles": {"GET": ("get-authors",)}}) if r.websocket else r
        for r in config.routes
    )
    config = config.model_copy(update={"routes": routes})
    async with start_gateway(config) as url:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(url), additional_headers=issuer.bearer(["nobody"])):
                pass
    assert refused.value.response.status_code == 403


async def test_upstream_close_code_reaches_the_client(start_gateway, issuer, upstream) -> None:
    headers = issuer.bearer(["get-authors"])
    async with (
        start_gateway(config_for(upstream.url)) as url,
        connect(ws_url(url), additional_headers=headers) as ws,
    ):
        await ws.recv()
        await ws.send("close:4001")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4001
    assert closed.value.rcvd.reason == "bye"


async def test_client_close_code_reaches_the_upstream(start_gateway, issuer, upstream) -> None:
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config_for(upstream.url)) as url:
        async with connect(ws_url(url), additional_headers=headers) as ws:
            await ws.recv()
            await ws.close(4002, "leaving")
        for _ in range(50):
            if upstream.seen:
                break
            await _pause()
    assert upstream.seen == [{"ws_close": 4002}]


async def test_oversized_frame_closes_with_1009(start_gateway, issuer, upstream) -> None:
    config = config_for(upstream.url, limits={"max_body_bytes": 1000, "max_ws_frame_bytes": 4096})
    headers = issuer.bearer(["get-authors"])
    async with start_gateway(config) as url, connect(ws_url(url), additional_headers=headers) as ws:
        await ws.recv()
        await ws.send("x" * 4097)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def _pause() -> None:
    await asyncio.sleep(0.02)


async def test_upstream_down_accepts_then_closes_1013(start_gateway, issuer) -> None:
    """Browsers cannot read a failed handshake's status: they get a close code and reason."""
    from .conftest import dead_url

    headers = issuer.bearer(["get-authors"])
    async with (
        start_gateway(config_for(dead_url())) as url,
        connect(ws_url(url), additional_headers=headers) as ws,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert "unavailable" in closed.value.rcvd.reason


class SlowToAccept:
    """A WebSocket upstream that takes ``delay`` seconds to accept; it counts how many
    handshakes it had under way at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.under_way = 0
        self.most = 0

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "websocket":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await receive()
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        await asyncio.sleep(self.delay)
        self.under_way -= 1
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "hello"})
        while (await receive())["type"] != "websocket.disconnect":
            pass


def _storm_config(url: str, in_flight: int, wait: float):  # type: ignore[no-untyped-def]
    return config_for(
        url,
        websockets={"max_per_user": 100, "handshakes_in_flight": in_flight, "handshake_wait": wait},
    )


async def _hello(url: str, headers: dict[str, str]) -> str:
    async with connect(ws_url(url), additional_headers=headers) as ws:
        return str(await asyncio.wait_for(ws.recv(), 10))


async def test_a_handshake_storm_queues_for_the_upstream_instead_of_piling_on(
    start_gateway, issuer
) -> None:
    """Sockets beyond ``handshakes_in_flight`` wait their turn, in order: the upstream
    never has more handshakes under way than that, and every socket gets through."""
    upstream = SlowToAccept(delay=0.2)
    headers = issuer.bearer(["get-authors"])
    async with (
        serve(upstream) as upstream_url,
        start_gateway(_storm_config(upstream_url, 2, 15.0)) as url,
    ):
        hellos = await asyncio.gather(*(_hello(url, headers) for _ in range(12)))
    assert hellos == ["hello"] * 12
    assert upstream.most == 2


async def test_a_socket_whose_turn_does_not_come_gets_1013_busy(start_gateway, issuer) -> None:
    upstream = SlowToAccept(delay=1.0)
    headers = issuer.bearer(["get-authors"])
    async with (
        serve(upstream) as upstream_url,
        start_gateway(_storm_config(upstream_url, 1, 0.3)) as url,
    ):
        first = asyncio.create_task(_hello(url, headers))
        await asyncio.sleep(0.1)
        async with connect(ws_url(url), additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert await first == "hello"
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        1013,
        "realtime is busy, retry later",
    )
