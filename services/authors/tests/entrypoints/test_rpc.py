"""The AMQP RPC server: the same commands for internal callers, as the caller of the token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from gatehouse.authors.app import create_app
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messages import ListAudit
from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.bus import bus_from_url
from gatehouse.common.events import EventBus
from gatehouse.common.identity import Principal
from gatehouse.common.tokens import JWTVerifier
from gatehouse.testing import TestIssuer

KEY = "rpc.authors"
ISSUER = "http://issuer.test/realms/gatehouse"


async def ask(bus: EventBus, request: dict[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = await bus.request(KEY, request, timeout=5)
    return reply


def call(issuer: TestIssuer, method: str, params: dict[str, Any], *roles: str) -> dict[str, Any]:
    token = issuer.bearer(roles)["Authorization"].removeprefix("Bearer ")
    context = {
        "token": token,
        "request_id": "rpc-req-1",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "client_ip": "203.0.113.9",
        "user_agent": "realtime/1",
    }
    return {"method": method, "params": params, "context": context}


async def test_authors_and_books_through_rpc(
    app: FastAPI, bus: EventBus, issuer: TestIssuer
) -> None:
    created = await ask(bus, call(issuer, "authors.create", {"name": "Le Guin"}, "admin"))
    author = created["result"]
    updated = await ask(
        bus,
        call(
            issuer,
            "authors.update",
            {"id": author["id"], "version": 1, "changes": {"bio": "E"}},
            "admin",
        ),
    )
    book = await ask(
        bus,
        call(
            issuer, "books.create", {"author_id": author["id"], "title": "T", "year": 1968}, "admin"
        ),
    )
    listed = await ask(bus, call(issuer, "books.list", {"author_id": author["id"]}, "get-authors"))
    got = await ask(bus, call(issuer, "authors.get", {"id": author["id"]}, "get-authors"))
    audit = await ask(bus, call(issuer, "authors.list", {"name": "le guin"}, "get-authors"))

    assert created["ok"]
    assert updated["ok"]
    assert book["ok"]
    assert updated["result"]["version"] == 2
    assert [b["title"] for b in listed["result"]["data"]] == ["T"]
    assert got["result"] == updated["result"]
    assert audit["result"]["meta"]["total"] == 1


async def test_the_audit_entry_is_the_rpc_callers(
    app: FastAPI, bus: EventBus, issuer: TestIssuer
) -> None:
    await ask(bus, call(issuer, "authors.create", {"name": "Le Guin"}, "admin"))
    services = app.state.services
    admin = RequestContext(Principal("s", "auditor", frozenset({"admin"})))
    [record] = (await services.messagebus.handle(ListAudit(), admin)).items

    assert (record["request_id"], record["client_ip"], record["user_agent"]) == (
        "rpc-req-1",
        "203.0.113.9",
        "realtime/1",
    )
    assert record["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


async def test_params_refused_before_the_bus_are_audited_as_the_write(
    app: FastAPI, bus: EventBus, issuer: TestIssuer
) -> None:
    author = (await ask(bus, call(issuer, "authors.create", {"name": "Le Guin"}, "admin")))[
        "result"
    ]
    bad = {"id": author["id"], "changes": {"bio": 5}}
    refused = await ask(bus, call(issuer, "authors.update", bad, "admin"))
    services = app.state.services
    admin = RequestContext(Principal("s", "auditor", frozenset({"admin"})))
    page = await services.messagebus.handle(ListAudit(outcome="refused"), admin)

    assert refused["error"]["code"] == "validation_failed"
    [record] = page.items
    assert (record["action"], record["entity_id"], record["user_agent"]) == (
        "updated",
        author["id"],
        "realtime/1",
    )
    assert record["refusal"] == {"status": 422, "code": "validation_failed", "fields": ["bio"]}


@pytest.mark.parametrize(
    ("request_", "code", "status"),
    [
        ({"method": "authors.list", "params": {}, "context": {}}, "unauthorized", 401),
        (
            {"method": "authors.list", "params": {}, "context": {"token": "x.y.z"}},
            "unauthorized",
            401,
        ),
    ],
)
async def test_a_call_without_a_valid_token_is_refused(
    app: FastAPI, bus: EventBus, request_: dict[str, Any], code: str, status: int
) -> None:
    reply = await ask(bus, request_)
    assert reply == {
        "ok": False,
        "error": {"code": code, "message": reply["error"]["message"], "status": status},
    }


async def test_roles_params_versions_and_methods_are_checked(
    app: FastAPI, bus: EventBus, issuer: TestIssuer
) -> None:
    created = await ask(bus, call(issuer, "authors.create", {"name": "X"}, "admin"))
    author_id = created["result"]["id"]

    forbidden = await ask(bus, call(issuer, "authors.create", {"name": "Y"}, "get-authors"))
    invalid = await ask(bus, call(issuer, "authors.create", {"name": 3}, "admin"))
    stale = await ask(bus, call(issuer, "authors.delete", {"id": author_id, "version": 7}, "admin"))
    unknown = await ask(bus, call(issuer, "authors.explode", {}, "admin"))
    bad_page = await ask(bus, call(issuer, "authors.list", {"page": 10**20}, "admin"))

    assert forbidden["error"]["code"] == "forbidden"
    assert (invalid["error"]["code"], invalid["error"]["status"]) == ("validation_failed", 422)
    assert stale["error"]["code"] == "precondition_failed"
    assert unknown["error"]["code"] == "unknown_method"
    assert bad_page["error"]["status"] == 422


@pytest.mark.services
async def test_over_rabbitmq(
    database_url: str,
    tmp_path: Path,
    amqp_namespace: Any,
    issuer: TestIssuer,
    verifier: JWTVerifier,
) -> None:
    settings = AuthorsSettings(
        database_url=database_url,
        data_dir=tmp_path,
        oidc_issuer=ISSUER,
        amqp_url=amqp_namespace.url,
        amqp_exchange=amqp_namespace.exchange,
    )
    caller = bus_from_url(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await caller.start()
    app = create_app(settings, verifier=verifier)
    try:
        async with app.router.lifespan_context(app):
            reply = await ask(caller, call(issuer, "authors.create", {"name": "Z"}, "admin"))
            got = await ask(
                caller, call(issuer, "authors.get", {"id": reply["result"]["id"]}, "admin")
            )
    finally:
        await caller.close()
    assert got == reply
