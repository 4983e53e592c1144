"""CloudEvents 1.0 envelope and the event-bus port with its in-memory adapter.

The bus has two adapters of one interface: :class:`InMemoryEventBus` (monolithic
mode and fast tests, a real implementation) and
:class:`gatehouse.common.amqp.AmqpEventBus` (RabbitMQ, split mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("gatehouse.events")

EXCHANGE = "gatehouse.events"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in JSON form, plus ``sequence`` and ``traceparent``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    sequence: int | None = None
    traceparent: str | None = None

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> CloudEvent:
        return cls.model_validate_json(raw)


Handler = Callable[[CloudEvent], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None: ...


class EventBus(Protocol):
    """Publish events by ``type``; subscribe with an AMQP topic pattern.

    ``subscribe(pattern, handler)`` without ``queue`` gives this subscriber every
    matching event (fan-out); subscribers that share a ``queue`` name share the work.
    ``publish`` returns once the bus has accepted the event (broker confirm).
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: CloudEvent) -> None: ...

    async def subscribe(
        self, pattern: str, handler: Handler, *, queue: str | None = None
    ) -> Subscription: ...


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic semantics: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


class _MemorySubscription:
    def __init__(self, bus: InMemoryEventBus, pattern: str, handler: Handler) -> None:
        self.pattern, self.handler, self._bus = pattern, handler, bus

    async def cancel(self) -> None:
        self._bus._subs.discard(self)


class InMemoryEventBus:
    """An in-process bus: every subscriber whose pattern matches gets the event.

    Handlers run in their own task per delivery so a slow handler never blocks the
    publisher; a failing handler is logged and counted, the others still run.
    """

    def __init__(self) -> None:
        self._subs: set[_MemorySubscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._subs.clear()

    async def publish(self, event: CloudEvent) -> None:
        for sub in list(self._subs):
            if topic_matches(sub.pattern, event.type):
                task = asyncio.create_task(self._deliver(sub.handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def subscribe(
        self, pattern: str, handler: Handler, *, queue: str | None = None
    ) -> Subscription:
        sub = _MemorySubscription(self, pattern, handler)
        self._subs.add(sub)
        return sub

    async def _deliver(self, handler: Handler, event: CloudEvent) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await handler(event)
            except Exception:
                log.exception("event handler failed for %s %s", event.type, event.id)
