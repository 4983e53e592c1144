"""The AsyncAPI 3.0 document of the WebSocket protocol, served at ``/asyncapi.json``."""

from __future__ import annotations

from typing import Any

from gatehouse.realtime.channels import AUTHORS
from gatehouse.realtime.protocol import OPS

_ID = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
_CLOSE_CODES = (
    "Close codes: 1008 authentication missing, late (auth_timeout) or invalid, or sustained "
    "message-rate abuse; 1009 frame above the transport's hard limit; 1011 internal error; "
    "1012 server restarting, reconnect; 1013 client too slow (send queue full), reconnect "
    "and refetch; 4001 access token expired without an `auth` refresh."
)


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_REQUEST = _schema(
    {
        "id": _ID,
        "op": {"type": "string", "enum": list(OPS)},
        "type": {"const": "auth", "description": "template form of op=auth"},
        "token": {"type": "string", "description": "access token (op=auth)"},
        "channel": {"type": "string", "examples": [AUTHORS, f"{AUTHORS}.42"]},
        "since": {"type": "integer", "description": "last seen sequence; not yet replayed"},
    },
    [],
)
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


def asyncapi_document(server_host: str = "localhost:8002") -> dict[str, Any]:
    """A minimal but true AsyncAPI 3.0 description of ``GET /ws``."""
    messages = {
        "request": _message("request", "subscribe, unsubscribe, ping or auth", _REQUEST),
        "replyOk": _message("replyOk", "successful reply to a request", _REPLY_OK),
        "replyError": _message("replyError", "failed reply; the socket stays open", _REPLY_ERROR),
        "event": _message("event", "an event pushed on a subscribed channel", _EVENT),
    }
    refs = {name: {"$ref": f"#/channels/ws/messages/{name}"} for name in messages}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Gatehouse realtime",
            "version": "1.0.0",
            "description": (
                "One WebSocket, JSON text frames. Authenticate with `Authorization: Bearer` "
                'at the handshake, or send `{"type": "auth", "token": ...}` first. '
                f"Channels: `{AUTHORS}` and `{AUTHORS}.<id>` (role get-authors). " + _CLOSE_CODES
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
                "messages": [refs["request"]],
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
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
    }
