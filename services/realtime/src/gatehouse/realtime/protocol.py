"""The client protocol of DESIGN §6, independent of any web framework.

Client -> server: ``{"id": ..., "op": "subscribe"|"unsubscribe"|"ping"|"auth", ...}``
(and the template's ``{"type": "auth", "token": ...}``). Server -> client: replies
``{"id": ..., "ok": true, "result": ...}`` / ``{"id": ..., "ok": false, "error":
{"code": ..., "message": ...}}``; pushes come from :mod:`gatehouse.realtime.hub`.
A bad frame earns an error reply and never closes the socket; sustained abuse does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gatehouse.common.errors import (
    BadRequest,
    Forbidden,
    GatehouseError,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
)
from gatehouse.common.identity import Principal
from gatehouse.common.problem import error_envelope
from gatehouse.realtime import metrics
from gatehouse.realtime.calls import Calls, Peer, TooManyCalls
from gatehouse.realtime.channels import parse_channel
from gatehouse.realtime.hub import POLICY_VIOLATION, TOKEN_EXPIRED, Connection, event_frame
from gatehouse.realtime.intake import Intake
from gatehouse.realtime.limits import TokenBucket
from gatehouse.realtime.registry import RemoteError
from gatehouse.realtime.settings import RealtimeSettings

log = logging.getLogger("gatehouse.realtime")

Verify = Callable[[str], Awaitable[Principal]]
RequestId = str | int | None
OpHandler = Callable[["Session", dict[str, Any]], Awaitable["Reply"]]


@dataclass(frozen=True, slots=True)
class Op:
    """One ``op`` of the protocol: its request fields (JSON Schema), whether it needs an
    authenticated connection, and its handler. The AsyncAPI document is built from these."""

    name: str
    summary: str
    fields: dict[str, Any]
    required: tuple[str, ...]
    handler: OpHandler
    authenticated: bool = True


OPERATIONS: dict[str, Op] = {}


def op(
    name: str,
    summary: str,
    *,
    fields: dict[str, Any] | None = None,
    required: tuple[str, ...] = (),
    authenticated: bool = True,
) -> Callable[[OpHandler], OpHandler]:
    """Register a Session method as the handler of ``op: name``."""

    def register(handler: OpHandler) -> OpHandler:
        OPERATIONS[name] = Op(name, summary, fields or {}, required, handler, authenticated)
        return handler

    return register


MAX_SEQUENCE = 2**63 - 1
CHANNEL_FIELD: dict[str, Any] = {
    "type": "string",
    "examples": ["authors", "authors.5f0c2a4e-8d1b-4c7e-9a3f-2b6d8e1f0a97", "books", "audit"],
}
SINCE_FIELD: dict[str, Any] = {
    "type": "integer",
    "description": (
        "subscribe: the last sequence seen on the channel (not negative; anything "
        "else is a bad_request reply)"
    ),
}

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY_FIELD: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_IDEMPOTENCY_KEY,
    "description": (
        "call: as HTTP's Idempotency-Key. A write repeated with the same key (same user) "
        "answers the first result and changes nothing; the same key with other params is "
        "idempotency_key_reused"
    ),
}


class SubscriptionLimit(GatehouseError):
    status, code, title = 429, "subscription_limit", "Too Many Subscriptions"


class AlreadySubscribed(GatehouseError):
    status, code, title = 409, "already_subscribed", "Already Subscribed"


@dataclass(frozen=True, slots=True)
class Reply:
    """A result, and what to do right after it is queued (before any other message)."""

    result: Any
    then: Callable[[], None] | None = None


def reply_ok(request_id: RequestId, result: Any) -> str:
    return _dumps({"id": request_id, "ok": True, "result": result})


def reply_error(request_id: RequestId, error: GatehouseError) -> str:
    envelope = error_envelope(error)
    if isinstance(error, RemoteError):  # the callee's own code, e.g. not_found, conflict
        envelope["code"] = error.remote_code
    return _dumps({"id": request_id, "ok": False, "error": envelope})


def parse_frame(text: str, max_bytes: int) -> dict[str, Any]:
    """A JSON object of at most ``max_bytes`` (UTF-8), else a :class:`GatehouseError`."""
    if len(text) > max_bytes or (len(text) * 4 > max_bytes and len(text.encode()) > max_bytes):
        raise PayloadTooLarge(f"message larger than {max_bytes} bytes")
    try:
        frame = json.loads(text)
    except ValueError:
        raise BadRequest("message is not valid JSON") from None
    if not isinstance(frame, dict):
        raise BadRequest("message must be a JSON object")
    return frame


def request_id(frame: dict[str, Any]) -> RequestId:
    value = frame.get("id")
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise BadRequest("id must be a string or an integer")


def operation(frame: dict[str, Any]) -> str:
    op = frame.get("op")
    if op is None and frame.get("type") == "auth":  # the template's first-message form
        op = "auth"
    if not isinstance(op, str) or op not in OPERATIONS:
        known = ", ".join(OPERATIONS)
        raise BadRequest(f"unknown op {str(op)[:40]!r}; expected one of {known}")
    return str(op)


def _since(frame: dict[str, Any]) -> int | None:
    value = frame.get("since")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQUENCE:
        raise BadRequest("'since' must be a non-negative integer: the last sequence you saw")
    return value


def _idempotency_key(frame: dict[str, Any]) -> str | None:
    value = frame.get("idempotency_key")
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"'idempotency_key' must be a string of 1 to {MAX_IDEMPOTENCY_KEY}")
    return value


def _string(frame: dict[str, Any], key: str) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key!r} must be a non-empty string")
    return value


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Session:
    """The protocol state of one connection: authentication, limits and its requests."""

    def __init__(
        self,
        conn: Connection,
        intake: Intake,
        verify: Verify,
        settings: RealtimeSettings,
        calls: Calls,
        peer: Peer,
    ) -> None:
        self.conn, self._verify, self._settings = conn, verify, settings
        self._intake, self._hub = intake, intake.hub
        self._calls, self._peer = calls, peer
        self._messages = TokenBucket(settings.message_rate, settings.message_burst)
        self._strikes = TokenBucket(1.0, settings.rate_limit_strikes)
        self._timer: asyncio.TimerHandle | None = None
        self._token = ""
        self._in_flight: set[asyncio.Task[None]] | None = None  # created on the first call

    @property
    def principal(self) -> Principal | None:
        return self.conn.principal

    def await_auth(self, timeout: float) -> None:
        """Close with 1008 unless an ``auth`` message arrives within ``timeout`` seconds."""
        self._timer = asyncio.get_running_loop().call_later(timeout, self._auth_deadline)

    def start_authenticated(self, principal: Principal, token: str) -> None:
        self._token = token
        self._set_principal(principal)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def cancel_calls(self) -> None:
        for task in self._in_flight or ():
            task.cancel()

    async def on_text(self, text: str) -> None:
        metrics.MESSAGES_IN.inc()
        if not self._admit():
            return
        rid: RequestId = None
        try:
            frame = parse_frame(text, self._settings.max_message_bytes)
            rid = request_id(frame)
            name = operation(frame)
            if name == "call":  # may wait for another service: never hold the reader
                self._start_call(rid, frame)
                return
            await self._answer(rid, self._dispatch(name, frame))
        except GatehouseError as exc:
            self._reply(reply_error(rid, exc))

    def _start_call(self, rid: RequestId, frame: dict[str, Any]) -> None:
        if self._in_flight is None:
            self._in_flight = set()
        limit = self._settings.max_calls_in_flight
        if len(self._in_flight) >= limit:
            raise TooManyCalls(f"at most {limit} calls at a time per connection")
        task = asyncio.create_task(self._answer(rid, self._dispatch("call", frame)))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _answer(self, rid: RequestId, work: Awaitable[Reply]) -> None:
        try:
            reply = await work
        except GatehouseError as exc:
            self._reply(reply_error(rid, exc))
            if isinstance(exc, Unauthorized) and self.principal is None:
                self.conn.close(POLICY_VIOLATION, "authentication failed")
            return
        except Exception:
            log.exception("request failed on a WebSocket connection")
            self._reply(reply_error(rid, GatehouseError("the request failed")))
            return
        self._reply(reply_ok(rid, reply.result))
        if reply.then is not None:
            reply.then()

    def on_bytes(self) -> None:
        metrics.MESSAGES_IN.inc()
        if self._admit():
            self._reply(reply_error(None, BadRequest("binary frames are not supported")))

    def _admit(self) -> bool:
        if self._messages.take():
            return True
        if not self._strikes.take():
            self.conn.close(POLICY_VIOLATION, "message rate limit exceeded")
            return False
        error = TooManyRequests("message rate limit exceeded", retry_after=1)
        self._reply(reply_error(None, error))
        return False

    def _reply(self, text: str) -> None:
        if self.conn.offer(text):
            metrics.MESSAGES_OUT_REPLY.inc()

    async def _dispatch(self, name: str, frame: dict[str, Any]) -> Reply:
        operation = OPERATIONS[name]
        if operation.authenticated and self.principal is None:
            raise Unauthorized("authenticate first: send {'type': 'auth', 'token': ...}")
        return await operation.handler(self, frame)

    @op("ping", "Liveness of the session: answers pong.")
    async def _ping(self, frame: dict[str, Any]) -> Reply:
        return Reply("pong")

    @op(
        "auth",
        "Authenticate (first message), or renew the token before it expires (same user).",
        fields={"token": {"type": "string", "description": "an access token"}},
        required=("token",),
        authenticated=False,
    )
    async def _auth_op(self, frame: dict[str, Any]) -> Reply:
        return Reply(await self._auth(_string(frame, "token")))

    @op(
        "subscribe",
        "Receive the events of a channel; with `since`, first those missed after it.",
        fields={"channel": CHANNEL_FIELD, "since": SINCE_FIELD},
        required=("channel",),
    )
    async def _subscribe_op(self, frame: dict[str, Any]) -> Reply:
        return await self._subscribe(_string(frame, "channel"), _since(frame))

    @op(
        "unsubscribe",
        "Stop the events of a channel.",
        fields={"channel": CHANNEL_FIELD},
        required=("channel",),
    )
    async def _unsubscribe_op(self, frame: dict[str, Any]) -> Reply:
        return Reply(self._unsubscribe(_string(frame, "channel")))

    @op(
        "call",
        "Run a method of another service (`<resource>.<verb>`) as the connection's user.",
        fields={
            "method": {"type": "string", "examples": ["authors.list"]},
            "params": {"type": "object", "description": "the method's params (see x-methods)"},
            "idempotency_key": IDEMPOTENCY_KEY_FIELD,
        },
        required=("method",),
    )
    async def _call_op(self, frame: dict[str, Any]) -> Reply:
        assert self.principal is not None
        method, params = _string(frame, "method"), frame.get("params")
        key = _idempotency_key(frame)
        result = await self._calls.run(
            self.principal, self._token, self._peer, method, params, idempotency_key=key
        )
        return Reply(result)

    async def _auth(self, token: str) -> dict[str, Any]:
        principal = await self._verify(token)
        previous = self.principal
        if previous is not None and previous.subject != principal.subject:
            raise Forbidden("a refreshed token must belong to the same subject")
        self._token = token
        self._set_principal(principal)
        revoked = [ch for ch in sorted(self.conn.channels) if not self._allowed(ch, principal)]
        for channel in revoked:
            self._hub.unsubscribe(self.conn, channel)
        result: dict[str, Any] = {"subject": principal.subject, "expires_at": principal.expires_at}
        if revoked:
            result["revoked"] = revoked
        return result

    async def _subscribe(self, name: str, since: int | None) -> Reply:
        assert self.principal is not None
        channel = parse_channel(name)
        if not channel.allows(self.principal):
            raise Forbidden(f"channel {name!r} needs one of the roles {sorted(channel.roles)}")
        if name in self.conn.channels:
            raise AlreadySubscribed(f"already subscribed to {name!r}; unsubscribe first")
        limit = self._settings.max_subscriptions
        if len(self.conn.channels) >= limit:
            raise SubscriptionLimit(f"at most {limit} subscriptions per connection")
        result: dict[str, Any] = {"channel": name}
        replay: list[str] = []
        if since is not None:
            await self._await_position(channel.source, since)
            recovery = self._intake.history.recover(name, channel.source, since)
            metrics.RECOVERIES.labels(recovery.reason or "recovered").inc()
            result["recovered"] = recovery.recovered
            if recovery.reason is not None:
                result["reason"] = recovery.reason
            replay = [event_frame(name, event) for event in recovery.events]
        top = self._intake.history.top(channel.source)
        if top is not None:
            result["sequence"] = top

        def go_live() -> None:  # right after the reply: the replay, then live events
            if replay:
                self.conn.offer(replay)
                metrics.MESSAGES_OUT_EVENT.inc(len(replay))
            self._hub.subscribe(self.conn, name)

        return Reply(result, go_live)

    async def _await_position(self, source: str, since: int) -> None:
        """Let a refilling or slightly lagging replica read up to ``since`` first."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.recovery_wait):
                await self._intake.caught_up.wait()
                top = self._intake.history.top(source)
                if top is not None and since > top:  # another replica served the client further
                    await self._intake.reach(source, since)

    def _unsubscribe(self, name: str) -> dict[str, Any]:
        self._hub.unsubscribe(self.conn, name)
        return {"channel": name}

    def _set_principal(self, principal: Principal) -> None:
        self.conn.principal = principal
        self.stop()
        if principal.expires_at:
            delay = max(0.0, principal.expires_at - time.time())
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(delay, self.conn.close, TOKEN_EXPIRED, "token expired")

    def _auth_deadline(self) -> None:
        if self.principal is None:
            self.conn.close(POLICY_VIOLATION, "authentication timeout")

    @staticmethod
    def _allowed(name: str, principal: Principal) -> bool:
        try:
            return parse_channel(name).allows(principal)
        except GatehouseError:
            return False
