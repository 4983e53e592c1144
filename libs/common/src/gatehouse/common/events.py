"""CloudEvents 1.0 envelope and the event-bus port.

The port has two adapters, picked by :func:`gatehouse.common.bus.bus_from_url`:
:class:`gatehouse.common.memory_bus.InMemoryEventBus` (``memory://``: monolithic
mode and fast tests, a real implementation) and
:class:`gatehouse.common.amqp.AmqpEventBus` (``amqp://``: RabbitMQ, split mode).
Both pass one contract test suite (``libs/common/tests/bus/``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from gatehouse.common.memory_bus import InMemoryEventBus as InMemoryEventBus

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
    """What ``subscribe`` and ``serve`` return: cancel it to stop consuming."""

    @property
    def active(self) -> bool:
        """True while the subscription consumes (its channel is open and connected)."""
        ...

    async def cancel(self) -> None: ...

    async def caught_up(self) -> None:
        """Return once the subscriber has been handed every event the bus retained
        when this was first awaited (fan-out with ``replay``); at once otherwise."""


RpcHandler = Callable[[dict[str, Any]], Awaitable[Any]]
DEFAULT_MAX_DELIVERIES = 5


class EventBus(Protocol):
    """Publish events by ``type``; subscribe with an AMQP topic pattern; request/reply.

    * ``publish`` returns once the bus has accepted the event (broker confirm).
    * ``subscribe(pattern, handler)`` without ``queue`` gives this subscriber every
      matching event, in order (fan-out); a failing handler is logged and the
      subscriber moves on. With ``replay`` seconds it is first handed the retained
      events of that last while (at least that much; a little more is allowed), and
      ``caught_up()`` on its subscription says when it has had them all.
    * ``subscribe(pattern, handler, queue=name)``: subscribers that share ``name``
      share the work, each event going to one of them. The queue is bound to
      ``pattern`` and keeps events while nobody consumes. An event whose handler
      raises is delivered again (to any subscriber of the queue) up to
      ``max_deliveries`` times in all, then moved to the dead-letter queue
      ``<name>.dlq``.
    * ``request(routing_key, body, timeout=...)`` sends one request to one server of
      ``routing_key`` and returns its reply (envelope: :mod:`gatehouse.common.rpc`);
      raises ``RpcUnavailable`` when nobody serves the key, ``RpcTimeout`` when no
      reply comes in time. ``serve(routing_key, handler)`` answers those requests;
      servers of one key share them.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def connected(self) -> bool:
        """True while the bus can reach its broker (readiness check ``bus``)."""
        ...

    async def publish(self, event: CloudEvent) -> None: ...

    async def subscribe(
        self, pattern: str, handler: Handler, *, queue: str | None = None, replay: float = 0.0
    ) -> Subscription: ...

    async def request(
        self,
        routing_key: str,
        body: Mapping[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - also the request's expiry in the broker
    ) -> dict[str, Any]: ...

    async def serve(self, routing_key: str, handler: RpcHandler) -> Subscription: ...


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


def __getattr__(name: str) -> Any:
    # The in-memory adapter used to live here; old imports keep working. New code:
    # ``from gatehouse.common import InMemoryEventBus`` (or ``bus_from_url("memory://")``).
    if name == "InMemoryEventBus":
        from gatehouse.common.memory_bus import InMemoryEventBus

        return InMemoryEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
