"""The ``call`` methods: a registry filled by decorators, discovered automatically.

A method is a name (``<resource>.<verb>``), the roles that may call it, a params
model (pydantic: validated by its compiled core validator, and its JSON Schema goes
into ``/asyncapi.json``) and a handler. Every module of
:mod:`gatehouse.realtime.methods` is imported by :func:`discover`, so a new module
with decorated handlers is a new part of the protocol, documented by construction::

    @METHODS.method("authors.get", roles={GET_AUTHORS}, params=ById, summary="One author")
    async def get_author(call: Call, params: ById) -> Any:
        return await call.ask("authors", "authors.get", params)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from gatehouse.common.errors import GatehouseError, ValidationFailed
from gatehouse.common.identity import Principal
from gatehouse.common.rpc import rpc_routing_key


class RemoteError(GatehouseError):
    """An error the callee answered; its code and message reach the client unchanged."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.remote_code, self.remote_status = code, status


class Requester(Protocol):
    """What ``call`` needs of the bus: request/reply (:class:`gatehouse.common.events.EventBus`)."""

    async def request(
        self,
        routing_key: str,
        body: dict[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - also the request's expiry in the broker
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, and the request context the callee needs for audit and idempotency."""

    principal: Principal
    token: str
    request_id: str
    traceparent: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    idempotency_key: str | None = None

    def context(self) -> dict[str, Any]:
        context = {
            "token": self.token,
            "request_id": self.request_id,
            "traceparent": self.traceparent,
            "client_ip": self.client_ip,
            "user_agent": self.user_agent,
            "idempotency_key": self.idempotency_key,
        }
        return {key: value for key, value in context.items() if value is not None}


@dataclass(frozen=True, slots=True)
class Call:
    """One ``call`` being served: its caller and the way to ask other services."""

    caller: Caller
    requester: Requester
    timeout: float

    async def ask(self, service: str, method: str, params: BaseModel) -> Any:
        """Ask ``service`` over RPC; its result, or its error raised as :class:`RemoteError`."""
        body = {
            "method": method,
            "params": params.model_dump(mode="json", exclude_unset=True),
            "context": self.caller.context(),
        }
        reply = await self.requester.request(rpc_routing_key(service), body, timeout=self.timeout)
        if reply.get("ok"):
            return reply.get("result")
        raw = reply.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        raise RemoteError(
            str(error.get("code") or "internal_error"),
            str(error.get("message") or "the service failed"),
            int(error.get("status") or 500),
        )


Handler = Callable[[Call, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    summary: str
    roles: frozenset[str]
    params: type[BaseModel]
    handler: Handler

    def parse(self, raw: Any) -> BaseModel:
        """``params`` of a call as this method's model, or :class:`ValidationFailed`."""
        try:
            return self.params.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            first = errors[0]
            where = ".".join(str(part) for part in first["loc"]) or "params"
            raise ValidationFailed(
                f"params of {self.name}: {where}: {first['msg']}", errors=errors
            ) from None

    def params_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()


class Registry:
    """Methods by name; :meth:`method` is the decorator that adds one."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def method(
        self, name: str, *, roles: set[str], params: type[BaseModel], summary: str
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if name in self._methods:
                raise ValueError(f"method {name!r} registered twice")
            self._methods[name] = Method(name, summary, frozenset(roles), params, handler)
            return handler

        return register

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def __iter__(self) -> Iterator[Method]:
        return iter(sorted(self._methods.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._methods)


METHODS = Registry()


def discover(package: str = "gatehouse.realtime.methods") -> Registry:
    """Import every module of ``package`` (their decorators fill :data:`METHODS`)."""
    root = importlib.import_module(package)
    for module in pkgutil.iter_modules(root.__path__, f"{package}."):
        importlib.import_module(module.name)
    return METHODS
