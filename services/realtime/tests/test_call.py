"""`call` over a real WebSocket, answered by a callee on the in-memory bus (the authors
service's RPC server stands behind the same port in production; proven end to end in
tests/e2e)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gatehouse.common.errors import NotFound
from gatehouse.common.memory_bus import InMemoryEventBus
from gatehouse.common.rpc import rpc_routing_key

AUTHOR = "5f0c2a4e-8d1b-4c7e-9a3f-2b6d8e1f0a97"
EDITOR = ("get-authors", "create-author", "update-author", "delete-author")
Callee = Callable[[dict[str, Any]], Awaitable[Any]]


async def authors_callee(bus: InMemoryEventBus, handler: Callee) -> list[dict[str, Any]]:
    """Serve ``rpc.authors`` with ``handler``; the requests it received."""
    received: list[dict[str, Any]] = []

    async def serve(request: dict[str, Any]) -> Any:
        received.append(request)
        return await handler(request)

    await bus.serve(rpc_routing_key("authors"), serve)
    return received


async def echo(request: dict[str, Any]) -> Any:
    return {"echo": request["params"], "method": request["method"]}


async def test_a_call_round_trip_carries_the_callers_context(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()
    received = await authors_callee(bus, echo)
    token = issuer.token(roles=EDITOR)
    async with start_realtime(bus=bus) as rt, rt.connect(token) as client:
        reply = await client.call(
            id="c1",
            op="call",
            method="authors.update",
            params={"id": AUTHOR, "version": 3, "changes": {"bio": "new"}},
        )
    assert reply == {
        "id": "c1",
        "ok": True,
        "result": {
            "echo": {"id": AUTHOR, "version": 3, "changes": {"bio": "new"}},
            "method": "authors.update",
        },
    }
    (request,) = received
    context = request["context"]
    assert context["token"] == token
    assert len(context["request_id"]) == 32
    assert context["client_ip"] == "127.0.0.1"
    assert context["user_agent"].startswith("Python/")


async def test_the_idempotency_key_of_a_call_reaches_the_callee(
    issuer: Any, start_realtime: Any
) -> None:
    """Regression: a `call` could not carry an idempotency key, so a client retrying a
    create over the socket (after a lost reply) created the author twice."""
    bus = InMemoryEventBus()
    received = await authors_callee(bus, echo)
    async with (
        start_realtime(bus=bus) as rt,
        rt.connect(issuer.token(roles=EDITOR)) as client,
    ):
        keyed = await client.call(
            id=1, op="call", method="authors.create", params={"name": "A"}, idempotency_key="k-1"
        )
        bad = [
            await client.call(id=n, op="call", method="authors.create", idempotency_key=key)
            for n, key in enumerate(["", 7, "x" * 256])
        ]
    assert keyed["ok"] is True
    (request,) = received
    assert request["context"]["idempotency_key"] == "k-1"
    assert [r["error"]["code"] for r in bad] == ["bad_request"] * 3


async def test_a_slow_callee_is_rpc_timeout_and_never_holds_the_socket(
    issuer: Any, start_realtime: Any
) -> None:
    bus = InMemoryEventBus()

    async def slow(request: dict[str, Any]) -> Any:
        await asyncio.sleep(5)

    await authors_callee(bus, slow)
    async with (
        start_realtime(bus=bus, call_timeout=0.5) as rt,
        rt.connect(issuer.token()) as client,
    ):
        await client.send({"id": "slow", "op": "call", "method": "authors.list"})
        pong = await client.call(id="p", op="ping")  # answered while the call waits
        timed_out = await client.receive()
    assert pong == {"id": "p", "ok": True, "result": "pong"}
    assert timed_out["id"] == "slow"
    assert timed_out["error"]["code"] == "rpc_timeout"


async def test_a_callee_that_is_down_is_rpc_unavailable(issuer: Any, start_realtime: Any) -> None:
    async with start_realtime(bus=InMemoryEventBus()) as rt, rt.connect(issuer.token()) as client:
        reply = await client.call(id=1, op="call", method="authors.get", params={"id": AUTHOR})
    assert reply["error"]["code"] == "rpc_unavailable"


async def test_the_callees_error_reaches_the_client(issuer: Any, start_realtime: Any) -> None:
    bus = InMemoryEventBus()

    async def missing(request: dict[str, Any]) -> Any:
        raise NotFound("no author 5f0c2a4e")

    await authors_callee(bus, missing)
    async with start_realtime(bus=bus) as rt, rt.connect(issuer.token()) as client:
        reply = await client.call(id=1, op="call", method="authors.get", params={"id": AUTHOR})
    assert reply["error"] == {"code": "not_found", "message": "no author 5f0c2a4e"}


@pytest.mark.parametrize(
    ("roles", "method", "params", "code"),
    [
        (("get-authors",), "authors.create", {"name": "Ada"}, "forbidden"),
        ((), "books.list", {}, "forbidden"),
        (EDITOR, "authors.get", {"id": "not-a-uuid"}, "validation_failed"),
        (EDITOR, "authors.create", {"name": "Ada", "extra": 1}, "validation_failed"),
        (
            EDITOR,
            "books.create",
            {"author_id": AUTHOR, "title": "T", "year": "1974"},
            "validation_failed",
        ),
        (EDITOR, "authors.explode", {}, "unknown_method"),
    ],
    ids=["role", "no-role", "bad-uuid", "extra-field", "string-year", "unknown"],
)
async def test_a_call_that_cannot_succeed_never_reaches_the_callee(
    issuer: Any,
    start_realtime: Any,
    roles: tuple[str, ...],
    method: str,
    params: dict[str, Any],
    code: str,
) -> None:
    bus = InMemoryEventBus()
    received = await authors_callee(bus, echo)
    async with start_realtime(bus=bus) as rt, rt.connect(issuer.token(roles=roles)) as client:
        reply = await client.call(id=1, op="call", method=method, params=params)
        pong = await client.call(id=2, op="ping")
    assert reply["error"]["code"] == code
    assert pong["result"] == "pong"
    assert received == []


async def test_calls_at_a_time_are_limited_per_connection(issuer: Any, start_realtime: Any) -> None:
    bus = InMemoryEventBus()
    release = asyncio.Event()

    async def held(request: dict[str, Any]) -> Any:
        await release.wait()
        return "done"

    await authors_callee(bus, held)
    async with (
        start_realtime(bus=bus, max_calls_in_flight=2) as rt,
        rt.connect(issuer.token()) as client,
    ):
        for n in range(3):
            await client.send({"id": n, "op": "call", "method": "authors.list"})
        refused = await client.receive()
        release.set()
        done = [await client.receive() for _ in range(2)]
    assert refused["id"] == 2
    assert refused["error"]["code"] == "too_many_calls"
    assert sorted(r["id"] for r in done) == [0, 1]
    assert all(r["result"] == "done" for r in done)
