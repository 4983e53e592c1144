"""RabbitMQ adapter of the event bus (aio-pika).

Publishing: topic exchange (routing key = event type), persistent messages,
publisher confirms, ``mandatory`` with returns raised, so ``publish`` returns only
once the broker has routed and stored the event. The exchange always feeds a
durable **stream** queue, so an event is never unroutable and every fan-out
subscriber (each realtime replica) reads every event from its own offset.
A fan-out subscriber reads the stream from a real position: a timestamp ``replay``
seconds back when it subscribes (never ``next``), then the offset after the last
event it saw, so a broker restart or a network cut, even before its first event,
loses no event for it. ``caught_up`` puts a fence message (empty body, type
``gatehouse.stream.fence``) at the stream's tail and waits to read it back; readers
skip fences.
Work queues (``subscribe(..., queue=name)``) are durable quorum queues: an event
whose handler fails is requeued, and after ``max_deliveries`` deliveries the
broker moves it to the dead-letter queue ``<name>.dlq``.

Request/reply: requests go through the direct exchange ``<namespace>.rpc``
(``gatehouse.rpc``) with their routing key (``rpc.authors``) to the queue
``<namespace>.<routing key>`` (``gatehouse.rpc.authors``) that the servers of the key
share. That queue lives only while a server consumes it, and requests are
published ``mandatory``, so a request nobody serves comes back at once
(``RpcUnavailable``) instead of waiting for its timeout; a request expires in the
queue when its caller stops waiting. Each bus receives its replies on one
exclusive queue of its own, matched by correlation id. A server acknowledges a
request as it takes it: a server that dies mid-request leaves its caller to the
timeout rather than running a command twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from aio_pika.exceptions import DeliveryError
from aiormq.exceptions import (
    AMQPConnectionError,
    InvalidFrameError,
    ProbableAuthenticationError,
)
from pydantic import ValidationError

from gatehouse.common import rpc
from gatehouse.common.errors import ConfigurationError, RpcTimeout, RpcUnavailable
from gatehouse.common.events import (
    DEFAULT_MAX_DELIVERIES,
    EXCHANGE,
    CloudEvent,
    Handler,
    RpcHandler,
    topic_matches,
)
from gatehouse.common.settings import mask_url

log = logging.getLogger("gatehouse.amqp")


# A fan-out subscriber starts this many seconds further back than it asked, so that a
# clock of ours ahead of the broker's (chunk timestamps are the broker's) loses nothing.
CLOCK_SKEW_MARGIN = 5.0
FENCE_TYPE = "gatehouse.stream.fence"
FENCE_HEADER = "x-gatehouse-fence"


def connection_refusal(url: str, exc: BaseException) -> str:
    """Why RabbitMQ at ``url`` could not be reached, in words an operator can act on."""
    parts = urlsplit(url)
    where = f"RabbitMQ at {mask_url(url)}"
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    if isinstance(exc, ProbableAuthenticationError):
        return f"{where} refused the user {parts.username or 'guest'!r} (wrong user or password)"
    if isinstance(exc, InvalidFrameError) and "Connection.Close" in str(exc):
        return (
            f"{where} refused the virtual host {vhost!r}: it does not exist, "
            f"or the user {parts.username or 'guest'!r} may not use it"
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, AMQPConnectionError) and exc.args and isinstance(exc.args[0], int):
        reason = str(exc.args[1]) if len(exc.args) > 1 else reason
    return f"cannot reach {where}: {reason or type(exc).__name__}"


@contextlib.contextmanager
def _quiet_connection_logs() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("aiormq.connection", "aio_pika.robust_connection")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _AmqpSubscription:
    def __init__(self, channel: AbstractRobustChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel, self._queue, self._tag = channel, queue, tag

    @property
    def active(self) -> bool:
        return not self._channel.is_closed  # closed while the connection is down

    async def cancel(self) -> None:
        if not self._channel.is_closed:  # while the broker is away the consumer is gone already
            await self._queue.cancel(self._tag)
        await self._channel.close()  # and it is not restored on reconnect

    async def caught_up(self) -> None:
        return None  # a work queue has no past to catch up with


class _StreamSubscription(_AmqpSubscription):
    """One fan-out reader of the stream, always at a real position.

    It attaches at a timestamp (``replay`` seconds back, plus a clock-skew margin),
    never at ``next``: aio-pika's robust queue re-consumes with the very ``arguments``
    dict after a reconnect, so until the first delivery a reconnect starts again from
    that timestamp, and afterwards from the offset after the last event seen. Events
    redelivered below that offset are skipped. Fences (see :meth:`caught_up`) are
    markers of this adapter, never handed to the handler.
    """

    def __init__(
        self,
        bus: AmqpEventBus,
        channel: AbstractRobustChannel,
        stream: AbstractQueue,
        pattern: str,
        handler: Handler,
        replay: float,
    ) -> None:
        super().__init__(channel, stream, "")
        self._bus, self._pattern, self._handler = bus, pattern, handler
        start = datetime.now(UTC) - timedelta(seconds=replay + CLOCK_SKEW_MARGIN)
        self.arguments: dict[str, Any] = {"x-stream-offset": start}
        self._fence = uuid.uuid4().hex
        self._fence_seen = asyncio.Event()
        self._fence_sent = False

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message, arguments=self.arguments)

    async def caught_up(self) -> None:
        """Return once every event retained when this is first awaited has been handled.

        Puts a fence at the tail of the stream (once) and waits to read it back, which
        tells the reader it has passed everything before it; retried while the broker
        is away (wrap in a timeout).
        """
        while not self._fence_sent:
            try:
                await self._bus._publish_fence(self._fence)
                self._fence_sent = True
            except Exception as exc:
                log.warning("cannot place a fence on the stream yet: %r", exc)
                await asyncio.sleep(self._bus._reconnect_interval)
        await self._fence_seen.wait()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            if self._is_new(message):
                await self._handle(message)
        finally:
            await message.ack()  # a stream ack only grants credit; the event stays

    def _is_new(self, message: AbstractIncomingMessage) -> bool:
        offset = message.headers.get("x-stream-offset")
        if isinstance(offset, int):
            position = self.arguments["x-stream-offset"]
            if isinstance(position, int) and offset < position:
                return False  # redelivered after a reconnect: seen already
            self.arguments["x-stream-offset"] = offset + 1
        fence = message.headers.get(FENCE_HEADER)
        if fence is not None:
            if fence == self._fence:
                self._fence_seen.set()
            return False
        return True

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            if message.routing_key and topic_matches(self._pattern, message.routing_key):
                await self._handler(CloudEvent.from_json(message.body))
        except ValidationError:
            log.error("dropping malformed event %s from the stream", message.message_id)
        except Exception:
            log.exception("stream handler failed for %s", message.message_id)


class AmqpEventBus:
    """The event bus on RabbitMQ; ``exchange`` lets tests isolate themselves."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = EXCHANGE,
        stream_max_age: str = "7D",
        prefetch: int = 256,
        setting: str = "AMQP_URL",
        reconnect_interval: float = 2.0,
        max_deliveries: int = DEFAULT_MAX_DELIVERIES,
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.url = url
        self.exchange_name = exchange
        self.stream_name = f"{exchange}.stream"
        namespace = exchange.removesuffix(".events")
        self.rpc_exchange_name = f"{namespace}.rpc"
        self._rpc_queue_prefix = f"{namespace}."
        self._reply_queue_name = f"{namespace}.reply.{uuid.uuid4().hex}"
        self._max_deliveries = max_deliveries
        self._max_age = stream_max_age
        self._prefetch = prefetch
        self._setting = setting
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._rpc_exchange: AbstractRobustExchange | None = None
        self._replies: AbstractQueue | None = None
        self._waiting: dict[str, asyncio.Future[bytes]] = {}
        self._reply_lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect and declare; a broker that refuses is one ConfigurationError naming the
        setting, saying why in words (aio-pika's own lines about it are kept quiet)."""
        try:
            with _quiet_connection_logs():
                self._connection = await aio_pika.connect_robust(
                    self.url, timeout=10, reconnect_interval=self._reconnect_interval
                )
        except Exception as exc:
            raise ConfigurationError(self._setting, connection_refusal(self.url, exc)) from None
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        assert isinstance(channel, AbstractRobustChannel)
        self._channel = channel
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        assert isinstance(exchange, AbstractRobustExchange)
        self._exchange = exchange
        stream = await self._declare_stream(channel)
        await stream.bind(self._exchange, routing_key="#")
        rpc_exchange = await channel.declare_exchange(
            self.rpc_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        assert isinstance(rpc_exchange, AbstractRobustExchange)
        self._rpc_exchange = rpc_exchange

    async def close(self) -> None:
        for waiter in self._waiting.values():
            waiter.cancel()
        self._waiting.clear()
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None
        self._rpc_exchange = self._replies = None

    def connected(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    async def publish(self, event: CloudEvent) -> None:
        if self._exchange is None:
            raise RuntimeError("AmqpEventBus.publish before start() or after close()")
        headers: dict[str, Any] = {}
        if event.traceparent:
            headers["traceparent"] = event.traceparent
        message = aio_pika.Message(
            event.to_json(),
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            type=event.type,
            headers=headers,
        )
        await self._exchange.publish(message, routing_key=event.type, mandatory=True)

    async def subscribe(
        self, pattern: str, handler: Handler, *, queue: str | None = None, replay: float = 0.0
    ) -> _AmqpSubscription:
        assert self._connection is not None, "start() first"
        channel = await self._connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        await channel.set_qos(prefetch_count=self._prefetch)
        if queue is None:
            return await self._fan_out(channel, pattern, handler, replay)
        return await self._work_queue(channel, pattern, handler, queue)

    async def _publish_fence(self, fence: str) -> None:
        """Put a marker at the stream's tail; a reader that reaches it has caught up."""
        if self._channel is None:
            raise RuntimeError("the bus is closed")
        message = aio_pika.Message(b"", type=FENCE_TYPE, headers={FENCE_HEADER: fence})
        await self._channel.default_exchange.publish(
            message, routing_key=self.stream_name, mandatory=True
        )

    async def _declare_stream(self, channel: AbstractRobustChannel) -> AbstractQueue:
        arguments = {"x-queue-type": "stream", "x-max-age": self._max_age}
        return await channel.declare_queue(self.stream_name, durable=True, arguments=arguments)

    async def _fan_out(
        self, channel: AbstractRobustChannel, pattern: str, handler: Handler, replay: float
    ) -> _StreamSubscription:
        stream = await self._declare_stream(channel)
        subscription = _StreamSubscription(self, channel, stream, pattern, handler, replay)
        await subscription.start()
        return subscription

    async def _work_queue(
        self, channel: AbstractRobustChannel, pattern: str, handler: Handler, name: str
    ) -> _AmqpSubscription:
        dead = await channel.declare_queue(f"{name}.dlq", durable=True)
        arguments = {
            "x-queue-type": "quorum",  # counts deliveries: a poison event cannot loop forever
            "x-delivery-limit": self._max_deliveries - 1,  # redeliveries after the first
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead.name,
        }
        queue = await channel.declare_queue(name, durable=True, arguments=arguments)
        await queue.bind(self.exchange_name, routing_key=pattern)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = CloudEvent.from_json(message.body)
            except ValidationError:
                log.error("dead-lettering malformed event %s from %s", message.message_id, name)
                await message.reject(requeue=False)
                return
            try:
                await handler(event)
            except Exception:
                log.warning("handler of %s failed for %s", name, event.id, exc_info=True)
                await message.nack(requeue=True)  # the broker dead-letters past the limit
            else:
                await message.ack()

        tag = await queue.consume(on_message)
        return _AmqpSubscription(channel, queue, tag)

    async def request(
        self,
        routing_key: str,
        body: Mapping[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109 - also the request's expiry in the broker
    ) -> dict[str, Any]:
        if self._rpc_exchange is None:
            raise RuntimeError("AmqpEventBus.request before start() or after close()")
        reply_to = await self._reply_queue()
        correlation_id = uuid.uuid4().hex
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = waiter
        message = aio_pika.Message(
            rpc.encode_request(body),
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=reply_to,
            expiration=timeout,  # the broker drops it once nobody waits for it
        )
        try:
            try:
                await self._rpc_exchange.publish(message, routing_key=routing_key, mandatory=True)
            except DeliveryError:
                raise RpcUnavailable(f"nobody serves {routing_key}") from None
            try:
                async with asyncio.timeout(timeout):
                    raw = await waiter
            except TimeoutError:
                raise RpcTimeout(f"{routing_key} did not answer within {timeout:g} s") from None
        finally:
            self._waiting.pop(correlation_id, None)
        return rpc.decode_reply(raw)

    async def serve(self, routing_key: str, handler: RpcHandler) -> _AmqpSubscription:
        if self._connection is None or self._channel is None:
            raise RuntimeError("AmqpEventBus.serve before start() or after close()")
        channel = await self._connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        await channel.set_qos(prefetch_count=self._prefetch)
        name = self._rpc_queue_prefix + routing_key
        queue = await channel.declare_queue(name, durable=False, auto_delete=True)
        await queue.bind(self.rpc_exchange_name, routing_key=routing_key)
        replies = self._channel.default_exchange

        async def on_request(message: AbstractIncomingMessage) -> None:
            await message.ack()  # at most once: see the module's notes
            reply = await rpc.answer(handler, message.body, routing_key)
            if message.reply_to:
                out = aio_pika.Message(
                    reply, content_type="application/json", correlation_id=message.correlation_id
                )
                try:
                    await replies.publish(out, routing_key=message.reply_to)
                except Exception:
                    log.warning("cannot reply to %s on %s", message.reply_to, routing_key)

        tag = await queue.consume(on_request)
        return _AmqpSubscription(channel, queue, tag)

    async def _reply_queue(self) -> str:
        """Declare this bus's reply queue on first use; its name survives reconnects."""
        async with self._reply_lock:
            if self._replies is None:
                assert self._connection is not None
                channel = await self._connection.channel()
                queue = await channel.declare_queue(
                    self._reply_queue_name, exclusive=True, auto_delete=True
                )
                await queue.consume(self._on_reply, no_ack=True)
                self._replies = queue
        return self._reply_queue_name

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._waiting.get(message.correlation_id or "")
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)
