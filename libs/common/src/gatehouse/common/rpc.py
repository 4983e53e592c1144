"""Request/reply over the event bus: the envelope both adapters speak.

A caller sends ``{"method": ..., "params": {...}, "context": {...}}`` to the routing
key ``rpc.<service>`` and waits, up to a timeout, for one reply:
``{"ok": true, "result": <json>}`` or
``{"ok": false, "error": {"code": ..., "message": ..., "status": <http status>}}``.

The callee's handler receives the request as a dict and returns the result (any
JSON value); it raises a :class:`~gatehouse.common.errors.GatehouseError` to answer
with that error. Any other exception is logged with the request id of the call
and answered ``internal_error``, never with its text, so a caller always gets an
answer instead of waiting for its timeout. What the transport itself cannot do is
raised at the caller: :class:`~gatehouse.common.errors.RpcTimeout` (no reply in
time) and :class:`~gatehouse.common.errors.RpcUnavailable` (nobody serves the key).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from gatehouse.common import tracing
from gatehouse.common.errors import BadRequest, GatehouseError
from gatehouse.common.events import RpcHandler
from gatehouse.common.logging import request_id_var

log = logging.getLogger("gatehouse.rpc")

DEFAULT_TIMEOUT = 5.0


def rpc_routing_key(service: str) -> str:
    """``rpc.<service>``: where the requests for ``service`` go."""
    return f"rpc.{service}"


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def encode_request(body: Mapping[str, Any]) -> bytes:
    """A request on the wire; its ``context.traceparent`` is the caller's current trace
    unless the caller set one."""
    context = body.get("context")
    traceparent = tracing.current_traceparent()
    if traceparent and not (isinstance(context, dict) and context.get("traceparent")):
        body = {**body, "context": {**(context or {}), "traceparent": traceparent}}
    return encode(body)


def ok_reply(result: Any) -> dict[str, Any]:
    return {"ok": True, "result": result}


def error_reply(error: GatehouseError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"code": error.code, "message": error.detail, "status": error.status},
    }


async def answer(handler: RpcHandler, raw: bytes, routing_key: str = "rpc") -> bytes:
    """Run ``handler`` on the raw request to ``routing_key``; the raw reply, whatever happens.

    The handler runs in a SERVER span of the callee (``rpc.authors`` -> ``authors``),
    child of the caller's ``context.traceparent``.
    """
    try:
        request = json.loads(raw)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        return encode(error_reply(BadRequest("an RPC request is a JSON object")))
    token = request_id_var.set(_request_id(request))
    try:
        with tracing.span(
            routing_key.removeprefix("rpc."),
            f"serve {request.get('method')}",
            kind=tracing.SpanKind.SERVER,
            parent=_traceparent(request),
            attributes={"rpc.system": "gatehouse", "rpc.method": str(request.get("method"))},
        ):
            return encode(ok_reply(await handler(request)))
    except GatehouseError as exc:
        return encode(error_reply(exc))
    except Exception:
        log.exception("RPC handler failed for %s", request.get("method"))
        return encode(error_reply(GatehouseError("the service failed to answer")))
    finally:
        request_id_var.reset(token)


def decode_reply(raw: bytes) -> dict[str, Any]:
    reply = json.loads(raw)
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ValueError("an RPC reply is a JSON object with a boolean 'ok'")
    return reply


def _request_id(request: Mapping[str, Any]) -> str | None:
    context = request.get("context")
    rid = context.get("request_id") if isinstance(context, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= 128 else None


def _traceparent(request: Mapping[str, Any]) -> str | None:
    context = request.get("context")
    value = context.get("traceparent") if isinstance(context, dict) else None
    return value if isinstance(value, str) else None
