"""The in-process adapter of the event bus (``memory://``): a real implementation.

It honours the whole port (:class:`gatehouse.common.events.EventBus`), as the
RabbitMQ adapter does, so a test or ``make run`` on it sees what production sees:
fan-out subscribers get every matching event in order; subscribers sharing a
``queue`` share its events, a failing handler's event is delivered again and
dead-lettered after ``max_deliveries``; requests go to one server of their key
and time out. Requests and replies travel as JSON bytes, as on the wire, so a
result that could not cross the broker cannot cross this bus either.

Nothing here blocks the publisher: each subscriber consumes from its own queue
in its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from gatehouse.common import rpc
from gatehouse.common.errors import RpcTimeout, RpcUnavailable
from gatehouse.common.events import (
    DEFAULT_MAX_DELIVERIES,
    CloudEvent,
    Handler,
    RpcHandler,
    Subscription,
    topic_matches,
)

log = logging.getLogger("gatehouse.events")
# Queued after a fan-out subscriber's replay: once it is read, the subscriber caught up.
_REPLAYED = CloudEvent(source="/gatehouse/memory-bus", type="gatehouse.bus.replayed")
_Delivery = tuple[CloudEvent, int]  # the event and how many times it was delivered before


class _Queue:
    """A named queue: its bindings, pending events, consumers and dead letters.

    Events go to the consumers in turn, each holding at most ``prefetch`` events
    at a time, as RabbitMQ dispatches to the consumers of a queue.
    """

    def __init__(self, bus: InMemoryEventBus, name: str) -> None:
        self.bus, self.name = bus, name
        self.patterns: set[str] = set()
        self.pending: deque[_Delivery] = deque()
        self.consumers: list[_QueueConsumer] = []
        self.dead: list[CloudEvent] = []
        self._turn = 0

    def matches(self, routing_key: str) -> bool:
        return any(topic_matches(p, routing_key) for p in self.patterns)

    def put(self, delivery: _Delivery) -> None:
        self.pending.append(delivery)
        self.dispatch()

    def dispatch(self) -> None:
        while self.pending:
            consumer = self._next_with_credit()
            if consumer is None:
                return
            consumer.take(self.pending.popleft())

    def _next_with_credit(self) -> _QueueConsumer | None:
        for _ in range(len(self.consumers)):
            self._turn = (self._turn + 1) % len(self.consumers)
            if self.consumers[self._turn].credit > 0:
                return self.consumers[self._turn]
        return None


class _QueueConsumer:
    def __init__(self, queue: _Queue, handler: Handler, prefetch: int) -> None:
        self.queue, self.handler, self.credit = queue, handler, prefetch

    def take(self, delivery: _Delivery) -> None:
        self.credit -= 1
        self.queue.bus._spawn(self._handle(delivery))

    async def _handle(self, delivery: _Delivery) -> None:
        event, before = delivery
        queue = self.queue
        try:
            await self.handler(event)
        except Exception:
            if before + 1 < queue.bus.max_deliveries:
                log.warning("handler of %s failed for %s; redelivering", queue.name, event.id)
                queue.pending.append((event, before + 1))
            else:
                log.exception("dead-lettering %s from %s", event.id, queue.name)
                queue.dead.append(event)
        finally:
            self.credit += 1
            queue.dispatch()

    @property
    def active(self) -> bool:
        return self in self.queue.consumers

    async def cancel(self) -> None:
        if self in self.queue.consumers:
            self.queue.consumers.remove(self)

    async def caught_up(self) -> None:
        return None  # a work queue has no past to catch up with


class _Consumer:
    """A fan-out subscriber's task; cancelling the subscription stops it."""

    def __init__(
        self, bus: InMemoryEventBus, pending: asyncio.Queue[CloudEvent], handler: Handler
    ) -> None:
        self._bus, self._pending = bus, pending
        self._replayed = asyncio.Event()
        self.task = bus._spawn(_read_in_order(pending, handler, self._replayed))

    @property
    def active(self) -> bool:
        return not self.task.done()

    async def cancel(self) -> None:
        self._bus._fan_out.pop(self, None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def caught_up(self) -> None:
        await self._replayed.wait()


class _Server:
    def __init__(self, bus: InMemoryEventBus, routing_key: str, handler: RpcHandler) -> None:
        self._bus, self.routing_key, self.handler = bus, routing_key, handler

    @property
    def active(self) -> bool:
        return self in self._bus._servers.get(self.routing_key, [])

    async def cancel(self) -> None:
        servers = self._bus._servers.get(self.routing_key, [])
        if self in servers:
            servers.remove(self)

    async def caught_up(self) -> None:
        return None


class InMemoryEventBus:
    """The event bus within one process. ``start`` is optional; ``close`` stops every task.

    Like the stream of the RabbitMQ adapter, it retains its last ``retain`` events
    (with their time) for fan-out subscribers that ask for a ``replay``.
    """

    def __init__(
        self,
        *,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
        prefetch: int = 256,
        retain: int = 10_000,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.max_deliveries = max_deliveries
        self._prefetch = prefetch
        self._fan_out: dict[_Consumer, tuple[str, asyncio.Queue[CloudEvent]]] = {}
        self._queues: dict[str, _Queue] = {}
        self._servers: dict[str, list[_Server]] = {}
        self._turn = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._log: deque[tuple[float, CloudEvent]] = deque(maxlen=retain)

    async def start(self) -> None:
        self._closed = False

    def connected(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._tasks, *(c.task for c in self._fan_out)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._fan_out.clear()
        self._servers.clear()

    async def publish(self, event: CloudEvent) -> None:
        self._log.append((time.time(), event))
        for pattern, pending in self._fan_out.values():
            if topic_matches(pattern, event.type):
                pending.put_nowait(event)
        for queue in self._queues.values():
            if queue.matches(event.type):
                queue.put((event, 0))

    async def subscribe(
        self, pattern: str, handler: Handler, *, queue: str | None = None, replay: float = 0.0
    ) -> Subscription:
        if queue is None:
            pending: asyncio.Queue[CloudEvent] = asyncio.Queue()
            if replay > 0:  # queued before the subscriber goes live: they come first
                since = time.time() - replay
                for at, event in self._log:
                    if at >= since and topic_matches(pattern, event.type):
                        pending.put_nowait(event)
            pending.put_nowait(_REPLAYED)
            reader = _Consumer(self, pending, handler)
            self._fan_out[reader] = (pattern, pending)
            return reader
        shared = self._queues.setdefault(queue, _Queue(self, queue))
        shared.patterns.add(pattern)
        consumer = _QueueConsumer(shared, handler, self._prefetch)
        shared.consumers.append(consumer)
        shared.dispatch()
        return consumer

    def dead_letters(self, queue: str) -> list[CloudEvent]:
        """The events of ``queue`` whose handler failed ``max_deliveries`` times."""
        return list(self._queues[queue].dead) if queue in self._queues else []

    async def request(
        self,
        routing_key: str,
        body: Mapping[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - also the request's expiry in the broker
    ) -> dict[str, Any]:
        servers = self._servers.get(routing_key)
        if not servers:
            raise RpcUnavailable(f"nobody serves {routing_key}")
        server = servers[next(self._turn) % len(servers)]
        # The callee goes on after the caller gave up, as a remote one would.
        answer = self._spawn(rpc.answer(server.handler, rpc.encode_request(body), routing_key))
        done, _ = await asyncio.wait([answer], timeout=timeout)
        if not done:
            raise RpcTimeout(f"{routing_key} did not answer within {timeout:g} s")
        return rpc.decode_reply(answer.result())

    async def serve(self, routing_key: str, handler: RpcHandler) -> Subscription:
        server = _Server(self, routing_key, handler)
        self._servers.setdefault(routing_key, []).append(server)
        return server

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _read_in_order(
    pending: asyncio.Queue[CloudEvent], handler: Handler, replayed: asyncio.Event
) -> None:
    while True:
        event = await pending.get()
        if event is _REPLAYED:
            replayed.set()
            continue
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed for %s %s", event.type, event.id)
