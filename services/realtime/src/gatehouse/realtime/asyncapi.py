"""The AsyncAPI 3.0 document of the WebSocket protocol, served at ``/asyncapi.json``."""

from __future__ import annotations

from typing import Any

from gatehouse.realtime.channels import FAMILIES
from gatehouse.realtime.protocol import OPS

_ID = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
_CLOSE_CODES = (
    "Close codes: 1008 authentication missing, late (auth_timeout) or invalid, or sustained "
    "message-rate abuse; 1009 frame above the transport's hard limit; 1011 internal error; "
    "1012 server restarting, reconnect and resume; 1013 client too slow (send queue full), "
    "reconnect and resume; 4001 access token expired without an `auth` refresh."
)


_RESUME = (
    "Resume: keep per channel the last `sequence` seen (or the `sequence` of the subscribe "
    "result); after a reconnect, to any replica, subscribe with `since` set to it. "
    "`recovered: true`: exactly the missed events follow the reply, in order, then live "
    "ones. `recovered: false` with a `reason` (history_expired, history_unavailable, "
    "position_unknown): refetch over HTTP and continue from the result's `sequence`. "
)


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_REQUEST = _schema(
    {
        "id": _ID,
        "op": {"type": "string", "enum": list(OPS)},
        "type": {"const": "auth", "description": "template form of op=auth"},
        "token": {"type": "string", "description": "access token (op=auth)"},
        "channel": {"type": "string", "examples": [f.pattern for f in FAMILIES]},
        "since": {
            "type": "integer",
            "description": (
                "subscribe: the last sequence seen on the channel (not negative; anything "
                "else is a bad_request reply)"
            ),
        },
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


def _channels_text() -> str:
    rows = [f"`{f.pattern}` ({f.summary}; roles {', '.join(sorted(f.roles))})" for f in FAMILIES]
    return "Channels: " + "; ".join(rows) + ". "


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
                + _channels_text()
                + _RESUME
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
