"""The AsyncAPI 3.0 document of the WebSocket protocol, served at ``/asyncapi.json``."""

from __future__ import annotations

from typing import Any

from gatehouse.realtime.channels import FAMILIES
from gatehouse.realtime.protocol import OPERATIONS, Op
from gatehouse.realtime.registry import Method, Registry

_ID = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
_CLOSE_CODES = (
    "Close codes: 1008 authentication missing, late (auth_timeout) or invalid, or sustained "
    "message-rate abuse; 1009 frame above the transport's hard limit; 1011 internal error; "
    "1012 server restarting, reconnect and resume; 1013 client too slow (send queue full), "
    "or from the gateway realtime unavailable or busy (the reason says which), reconnect "
    "with backoff and resume; 4001 access token expired without an `auth` refresh."
)


_RESUME = (
    "Resume: keep per channel the last `sequence` seen (or the `sequence` of the subscribe "
    "result); after a reconnect, to any replica, subscribe with `since` set to it. "
    "`recovered: true`: exactly the missed events follow the reply, in order, then live "
    "ones. `recovered: false` with a `reason` (history_expired, history_unavailable, "
    "position_unknown): refetch over HTTP and continue from the result's `sequence`. "
)

_CALLS = (
    'Call: `{"id", "op": "call", "method": "authors.list", "params": {...}}` runs '
    "the method as the connection's user in the service that owns it (over AMQP RPC); the "
    "reply is its result or its error. Errors of the transport: rpc_timeout, "
    "rpc_unavailable; of the checks: unknown_method, forbidden, validation_failed, "
    "too_many_calls. "
)


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_REPLY_OK = _schema({"id": _ID, "ok": {"const": True}, "result": {}}, ["id", "ok", "result"])
_REPLY_ERROR = _schema(
    {
        "id": _ID,
        "ok": {"const": False},
        "error": _schema(
            {"code": {"type": "string"}, "message": {"type": "string"}}, ["code", "message"]
        ),
    },
    ["id", "ok", "error"],
)
_CLOUDEVENT = _schema(
    {
        "specversion": {"const": "1.0"},
        "id": {"type": "string"},
        "source": {"type": "string"},
        "type": {"type": "string", "examples": ["gatehouse.author.created"]},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string"},
        "datacontenttype": {"type": "string"},
        "data": {"type": "object"},
        "sequence": {"type": "integer"},
        "traceparent": {"type": "string"},
    },
    ["specversion", "id", "source", "type"],
)
_EVENT = _schema(
    {"type": {"const": "event"}, "channel": {"type": "string"}, "event": _CLOUDEVENT},
    ["type", "channel", "event"],
)


def _message(name: str, summary: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "summary": summary, "contentType": "application/json", "payload": payload}


def _channels_text() -> str:
    rows = [f"`{f.pattern}` ({f.summary}; roles {', '.join(sorted(f.roles))})" for f in FAMILIES]
    return "Channels: " + "; ".join(rows) + ". "


def _request(ops: list[Op]) -> dict[str, Any]:
    """The envelope of every request: ``op`` and the fields of all ops, described but not
    constrained (clients of every earlier version of this message stay valid: a field
    an old client could send in any form must still be accepted here); each op's own
    ``<op>Request`` message says what it requires."""
    fields: dict[str, Any] = {
        "id": _ID,
        "op": {"type": "string", "enum": [o.name for o in ops]},
        "type": {"const": "auth", "description": "template form of op=auth"},
    }
    for operation in ops:
        for name in operation.fields:
            fields.setdefault(name, {"description": f"see {operation.name}Request"})
    return _schema(fields, [])


def _op_message(operation: Op, methods: Registry) -> dict[str, Any]:
    fields = {"id": _ID, "op": {"const": operation.name}, **operation.fields}
    payload = _schema(fields, ["op", *operation.required])
    if operation.name == "call":
        payload = {"oneOf": [_call_schema(m) for m in methods]}
    return _message(f"{operation.name}Request", operation.summary, payload)


def _call_schema(method: Method) -> dict[str, Any]:
    return {
        **_schema(
            {
                "id": _ID,
                "op": {"const": "call"},
                "method": {"const": method.name},
                "params": {"$ref": f"#/components/schemas/{_params_name(method)}"},
            },
            ["op", "method"],
        ),
        "description": f"{method.summary} (roles: {', '.join(sorted(method.roles))})",
    }


def _params_name(method: Method) -> str:
    return f"{method.name}.params"


def _method_schemas(methods: Registry) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for method in methods:
        schema = method.params.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[_params_name(method)] = schema
    return schemas


def asyncapi_document(methods: Registry, server_host: str = "localhost:8002") -> dict[str, Any]:
    """The AsyncAPI 3.0 description of ``GET /ws``, built from the op table of
    :mod:`.protocol`, the channel table and the ``call`` method registry."""
    ops = list(OPERATIONS.values())
    messages = {
        "request": _message(
            "request", "any request: " + ", ".join(o.name for o in ops), _request(ops)
        ),
        "replyOk": _message("replyOk", "successful reply to a request", _REPLY_OK),
        "replyError": _message("replyError", "failed reply; the socket stays open", _REPLY_ERROR),
        "event": _message("event", "an event pushed on a subscribed channel", _EVENT),
    }
    for operation in ops:
        messages[f"{operation.name}Request"] = _op_message(operation, methods)
    refs = {name: {"$ref": f"#/channels/ws/messages/{name}"} for name in messages}
    requests = [refs["request"], *(refs[f"{o.name}Request"] for o in ops)]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Gatehouse realtime",
            "version": "1.0.0",
            "description": (
                "One WebSocket, JSON text frames. Authenticate with `Authorization: Bearer` "
                'at the handshake, or send `{"type": "auth", "token": ...}` first. '
                + _channels_text()
                + _RESUME
                + _CALLS
                + _CLOSE_CODES
            ),
        },
        "servers": {
            "realtime": {
                "host": server_host,
                "protocol": "ws",
                "security": [{"$ref": "#/components/securitySchemes/bearer"}],
            }
        },
        "channels": {"ws": {"address": "/ws", "messages": messages}},
        "operations": {
            "sendRequest": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ws"},
                "messages": requests,
                "reply": {
                    "channel": {"$ref": "#/channels/ws"},
                    "messages": [refs["replyOk"], refs["replyError"]],
                },
            },
            "pushEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/ws"},
                "messages": [refs["event"]],
            },
        },
        "components": {
            "schemas": _method_schemas(methods),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
