"""The messages of the running system against their checked-in contracts.

Producers are tested by what their consumers receive: a client subscribed through
the gateway sees every event of a create/update/delete scenario, and each frame it
receives must conform to the AsyncAPI message it is (as served and as checked in),
each event to the JSON Schema of its type. The served ``/asyncapi.json`` must keep
the clients of every checked-in version of its messages working.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from .conftest import System
from .openapi import gateway_document
from .schemas import ASYNCAPI, EVENTS, breaks, latest, validator, versions

pytestmark = [pytest.mark.e2e, pytest.mark.services]

Frame = dict[str, Any]


def served_asyncapi(system: System) -> dict[str, Any]:
    """``/asyncapi.json`` as the gateway serves it (DESIGN §13)."""
    response = httpx.get(f"{system.gateway}/asyncapi.json", timeout=10)
    response.raise_for_status()
    document = response.json()
    assert isinstance(document, dict)
    return document


def _messages(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each message's payload, its ``#/components/...`` references inlined (a checked-in
    schema stands alone)."""
    messages: dict[str, dict[str, Any]] = {}
    for channel in document["channels"].values():
        for name, message in channel.get("messages", {}).items():
            messages[name] = _inlined(message["payload"], document)
    return messages


def _inlined(schema: Any, document: dict[str, Any]) -> Any:
    if isinstance(schema, list):
        return [_inlined(item, document) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target: Any = document
        for key in schema["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        return _inlined(target, document)
    return {key: _inlined(value, document) for key, value in schema.items()}


def _client_sent(document: dict[str, Any]) -> set[str]:
    """Messages of operations the server receives (requests), not their replies."""
    sent = set()
    for operation in document["operations"].values():
        if operation["action"] == "receive":
            sent |= {ref["$ref"].rsplit("/", 1)[-1] for ref in operation["messages"]}
    return sent


def test_the_served_asyncapi_keeps_every_checked_in_client_working(system: System) -> None:
    document = served_asyncapi(system)
    served, client_sent = _messages(document), _client_sent(document)
    unpinned = sorted(set(served) - set(versions(ASYNCAPI)))
    assert not unpinned, f"check in asyncapi/<message>/v1.json for {unpinned}"
    found = []
    for name, history in versions(ASYNCAPI).items():
        assert name in served, f"message {name!r} was removed from /asyncapi.json"
        for old in history:
            if name in client_sent:  # old clients still send what they were written for
                problems = breaks(old.schema, served[name])
            else:  # old clients must still understand what the server sends
                problems = breaks(served[name], old.schema)
            found += [f"served {name} breaks {old.label}: {p}" for p in problems]
    assert not found, "\n".join(found)


# What a client does, step by step; a step runs when the API documents its operation.
# Each: (method, path template, body, the event it must cause).
SCENARIO: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("post", "/api/v1/authors", {"name": "{name}", "bio": "contract"}, "gatehouse.author.created"),
    ("patch", "/api/v1/authors/{author_id}", {"bio": "changed"}, "gatehouse.author.updated"),
    (
        "post",
        "/api/v1/books",
        {"author_id": "{author_id}", "title": "The Dispossessed", "year": 1974},
        "gatehouse.book.created",
    ),
    ("patch", "/api/v1/books/{book_id}", {"year": 1975}, "gatehouse.book.updated"),
    ("delete", "/api/v1/books/{book_id}", None, "gatehouse.book.deleted"),
    ("delete", "/api/v1/authors/{author_id}", None, "gatehouse.author.deleted"),
]
CHANNELS = ("authors", "books")


async def test_what_clients_receive_conforms_to_the_contracts(system: System) -> None:
    paths = gateway_document(system.gateway)
    steps = [s for s in SCENARIO if s[0] in paths["paths"].get(_template(s[1]), {})]
    assert steps, "the API documents none of the scenario's operations"
    assert steps[0][3] == "gatehouse.author.created", "the API cannot create authors"
    token = await system.login("admin")
    async with _subscribed(system, token) as (ws, frames):
        subjects = await _run(system, token, steps)
        # The books channel comes with realtime #8; until then book events cannot arrive.
        open_channels = {c for c, reply in zip(CHANNELS, frames, strict=True) if reply["ok"]}
        expected = {
            (event_type, subjects[event_type])
            for *_, event_type in steps
            if event_type.split(".")[1] + "s" in open_channels
        }
        await _until_received(ws, frames, expected)
    document = served_asyncapi(system)
    problems = [p for frame in frames for p in _nonconformance(frame, document)]
    assert not problems, "\n".join(problems)


def _template(path: str) -> str:
    return path.replace("{name}", "")


@contextlib.asynccontextmanager
async def _subscribed(
    system: System, token: str
) -> AsyncIterator[tuple[websockets.ClientConnection, list[Frame]]]:
    """A socket through the gateway subscribed to every channel; the frames it received."""
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(system.ws, additional_headers=headers) as ws:
        frames: list[Frame] = []
        for number, channel in enumerate(CHANNELS):
            await ws.send(json.dumps({"id": number, "op": "subscribe", "channel": channel}))
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert frames[0]["ok"] is True, frames[0]  # the authors channel exists today
        yield ws, frames


async def _run(
    system: System, token: str, steps: list[tuple[str, str, dict[str, Any] | None, str]]
) -> dict[str, str]:
    """Run the steps; the subject (resource id) of the event each one must cause."""
    ids = {"name": f"Contract {uuid.uuid4().hex[:12]}"}
    subjects = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=system.gateway, headers=headers, timeout=10) as client:
        for method, template, body, event_type in steps:
            path = template.format(**ids)
            payload = _filled(body, ids)
            response = await client.request(method, path, json=payload)
            assert response.status_code < 300, f"{method.upper()} {path}: {response.text}"
            if event_type.endswith(".created"):
                kind = event_type.split(".")[1]
                ids[f"{kind}_id"] = response.json()["id"]
            subjects[event_type] = ids[f"{event_type.split('.')[1]}_id"]
    return subjects


def _filled(body: dict[str, Any] | None, ids: dict[str, str]) -> dict[str, Any] | None:
    if body is None:
        return None
    return {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}


async def _until_received(
    ws: websockets.ClientConnection, frames: list[Frame], expected: set[tuple[str, str]]
) -> None:
    missing = set(expected)
    try:
        async with asyncio.timeout(15):
            while missing:
                frame = json.loads(await ws.recv())
                frames.append(frame)
                if frame.get("type") == "event":
                    missing.discard((frame["event"]["type"], frame["event"].get("subject")))
    except TimeoutError:
        pytest.fail(f"events never received: {sorted(missing)}; received {frames}")


def _nonconformance(frame: Frame, document: dict[str, Any]) -> list[str]:
    name = (
        "event" if frame.get("type") == "event" else "replyOk" if frame.get("ok") else "replyError"
    )
    served = _messages(document)[name]
    problems = [
        f"{name} (served schema): {e.message}" for e in validator(served).iter_errors(frame)
    ]
    problems += [f"{name} (checked in): {e}" for e in latest(ASYNCAPI, name).errors(frame)]
    if name == "event":
        event = frame["event"]
        schema = latest(EVENTS, event["type"])
        problems += [f"{schema.label}: {e}" for e in schema.errors(event)]
    return [f"{p}\n    in {json.dumps(frame)[:400]}" for p in problems]
