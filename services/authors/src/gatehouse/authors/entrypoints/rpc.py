"""The AMQP RPC server: the service's commands and queries for internal callers.

Routing key ``rpc.authors`` (CONTRACTS.md, "RPC over the bus"). A request is
``{"method": "<resource>.<verb>", "params": {...}, "context": {"token": ...,
"request_id", "traceparent", "client_ip", "user_agent"}}``. The caller's token is
verified here (defence in depth: the caller, e.g. realtime's WS ``call``, checked it
too), and the message runs through the same message bus as HTTP, with the
caller's context: roles, audit, idempotency and events are the same.

Methods: ``authors.list|get|create|update|delete`` and ``books.list|get|create|
update|delete``. ``update`` is a JSON Merge Patch (``params.changes``) guarded by
``params.version`` when given (the ETag's number); results are the resources as
the HTTP API returns them, lists ``{"data": [...], "meta": {...}}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatehouse.authors.adapters.outbox import Refusal
from gatehouse.authors.domain import commands
from gatehouse.authors.entrypoints.schemas import AuthorIn, AuthorPatch, BookIn, BookPatch
from gatehouse.authors.service_layer import messages
from gatehouse.authors.service_layer.context import RequestContext
from gatehouse.authors.service_layer.messagebus import Message, MessageBus, Outcome
from gatehouse.authors.service_layer.pagination import CURSOR_PATTERN, MAX_PAGE, MAX_PER_PAGE, Page
from gatehouse.authors.service_layer.queries import AuditPage
from gatehouse.common import tracing
from gatehouse.common.errors import BadRequest, Unauthorized, ValidationFailed
from gatehouse.common.events import EventBus, Subscription
from gatehouse.common.rpc import rpc_routing_key
from gatehouse.common.tokens import JWTVerifier

ROUTING_KEY = rpc_routing_key("authors")
TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
FIELD_NAME = re.compile(r"^[a-z_]{1,32}$")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ById(_Params):
    id: UUID


class Guarded(ById):
    version: int | None = Field(None, ge=1, le=2**31 - 1)


class AuthorChange(Guarded):
    changes: AuthorPatch


class BookChange(Guarded):
    changes: BookPatch


class ListParams(_Params):
    page: int | None = Field(None, ge=1, le=MAX_PAGE)
    per_page: int = Field(20, ge=1, le=MAX_PER_PAGE)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    sort: str | None = Field(None, max_length=100)
    search: str | None = Field(None, max_length=200)

    def window(self) -> messages.Window:
        return messages.Window(self.per_page, self.page, self.cursor, self.sort)


class AuthorList(ListParams):
    name: str | None = Field(None, max_length=400)


class BookList(ListParams):
    author_id: UUID | None = None


def _authors_list(p: AuthorList) -> Message:
    return messages.ListAuthors(p.window(), name=p.name, search=p.search)


def _books_list(p: BookList) -> Message:
    return messages.ListBooks(p.window(), author_id=p.author_id, search=p.search)


def _book_create(p: BookIn) -> Message:
    return commands.CreateBook(p.author_id, p.title, p.year, p.isbn)


def _book_update(p: BookChange) -> Message:
    return commands.PatchBook(p.id, p.changes.changes(), p.version)


METHODS: dict[str, tuple[type[BaseModel], Callable[[Any], Message]]] = {
    "authors.list": (AuthorList, _authors_list),
    "authors.get": (ById, lambda p: messages.GetAuthor(p.id)),
    "authors.create": (AuthorIn, lambda p: commands.CreateAuthor(p.name, p.bio)),
    "authors.update": (
        AuthorChange,
        lambda p: commands.PatchAuthor(p.id, p.changes.changes(), p.version),
    ),
    "authors.delete": (Guarded, lambda p: commands.DeleteAuthor(p.id, p.version)),
    "books.list": (BookList, _books_list),
    "books.get": (ById, lambda p: messages.GetBook(p.id)),
    "books.create": (BookIn, _book_create),
    "books.update": (BookChange, _book_update),
    "books.delete": (Guarded, lambda p: commands.DeleteBook(p.id, p.version)),
}


# The command each write method sends: a refusal of its params is audited as that write.
WRITES: dict[str, type[commands.Command]] = {
    "authors.create": commands.CreateAuthor,
    "authors.update": commands.PatchAuthor,
    "authors.delete": commands.DeleteAuthor,
    "books.create": commands.CreateBook,
    "books.update": commands.PatchBook,
    "books.delete": commands.DeleteBook,
}


class UnknownMethod(BadRequest):
    code = "unknown_method"


class RpcServer:
    """Answers ``rpc.authors`` requests through ``messagebus``, as the caller of the token."""

    def __init__(self, messagebus: MessageBus, verifier: JWTVerifier) -> None:
        self._messagebus = messagebus
        self._verifier = verifier

    async def serve(self, events: EventBus) -> Subscription:
        return await events.serve(ROUTING_KEY, self.handle)

    async def handle(self, request: dict[str, Any]) -> Any:
        context = await self._context(request.get("context"))
        method, params = request.get("method"), request.get("params")
        try:
            message = _message(method, params)
        except ValidationFailed as exc:  # refused before the bus: audited here
            if isinstance(method, str) and method in WRITES:
                refusal = Refusal(exc.status, exc.code, _fields(exc))
                await self._messagebus.refused(WRITES[method], context, refusal, _id(params))
            raise
        return _result(await self._messagebus.handle(message, context))

    async def _context(self, raw: Any) -> RequestContext:
        caller = raw if isinstance(raw, dict) else {}
        token = caller.get("token")
        if not isinstance(token, str) or not token:
            raise Unauthorized("the RPC context carries no token of the caller")
        principal = await self._verifier.verify(token)
        trace = tracing.current_traceparent() or caller.get("traceparent")  # the serve span
        return RequestContext(
            principal,
            request_id=_text(caller.get("request_id"), 128) or RequestContext(None).request_id,
            traceparent=trace if isinstance(trace, str) and TRACEPARENT.match(trace) else None,
            client_ip=_text(caller.get("client_ip"), 64),
            user_agent=_text(caller.get("user_agent"), 512),
            idempotency_key=_text(caller.get("idempotency_key"), 255),
        )


def _fields(error: ValidationFailed) -> tuple[str, ...]:
    """The fields the refused params named (of ``changes`` for an update); names only."""
    names = set()
    for problem in error.extra.get("errors", []):
        loc = [str(part) for part in problem.get("loc", ())]
        names.update(loc[1:2] if loc[:1] == ["changes"] else loc[:1])
    return tuple(sorted(n for n in names if FIELD_NAME.match(n)))


def _id(params: Any) -> str | None:
    try:
        return str(UUID(str(params.get("id"))[:64])) if isinstance(params, dict) else None
    except ValueError:
        return None


def _message(method: Any, params: Any) -> Message:
    if not isinstance(method, str) or method not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise UnknownMethod(f"unknown method {str(method)[:64]!r}; known: {known}")
    model, build = METHODS[method]
    try:
        return build(model.model_validate(params if params is not None else {}))
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise ValidationFailed(f"params of {method} are not valid", errors=errors) from None


def _result(found: Any) -> Any:
    if isinstance(found, Outcome):
        return found.resource
    if isinstance(found, Page | AuditPage):
        return {"data": found.items, "meta": found.meta()}
    return found


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None
