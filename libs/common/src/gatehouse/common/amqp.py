"""RabbitMQ adapter of the event bus (aio-pika).

Publishing: topic exchange (routing key = event type), persistent messages,
publisher confirms, ``mandatory`` with returns raised, so ``publish`` returns only
once the broker has routed and stored the event. The exchange always feeds a
durable **stream** queue, so an event is never unroutable and every fan-out
subscriber (each realtime replica) reads every event from its own offset.
A fan-out subscriber that loses its connection resumes from the offset after the
last event it saw, so a broker restart or a network cut loses no event for it.
Work queues (``subscribe(..., queue=name)``) are ordinary durable queues with a
dead-letter queue for messages whose handler fails.
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
)
from pydantic import ValidationError

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import EXCHANGE, CloudEvent, Handler, topic_matches

log = logging.getLogger("gatehouse.amqp")


class _AmqpSubscription:
    def __init__(self, channel: AbstractRobustChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel, self._queue, self._tag = channel, queue, tag

    async def cancel(self) -> None:
        await self._queue.cancel(self._tag)
        await self._channel.close()


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
    ) -> None:
        self.url = url
        self.exchange_name = exchange
        self.stream_name = f"{exchange}.stream"
        self._max_age = stream_max_age
        self._prefetch = prefetch
        self._setting = setting
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None

    async def start(self) -> None:
        try:
            self._connection = await aio_pika.connect_robust(
                self.url, timeout=10, reconnect_interval=self._reconnect_interval
            )
        except Exception as exc:
            raise ConfigurationError(self._setting, f"cannot connect to RabbitMQ: {exc}") from exc
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

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._exchange = None

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
        self, pattern: str, handler: Handler, *, queue: str | None = None
    ) -> _AmqpSubscription:
        assert self._connection is not None, "start() first"
        channel = await self._connection.channel()
        assert isinstance(channel, AbstractRobustChannel)
        await channel.set_qos(prefetch_count=self._prefetch)
        if queue is None:
            return await self._fan_out(channel, pattern, handler)
        return await self._work_queue(channel, pattern, handler, queue)

    async def _declare_stream(self, channel: AbstractRobustChannel) -> AbstractQueue:
        arguments = {"x-queue-type": "stream", "x-max-age": self._max_age}
        return await channel.declare_queue(self.stream_name, durable=True, arguments=arguments)

    async def _fan_out(
        self, channel: AbstractRobustChannel, pattern: str, handler: Handler
    ) -> _AmqpSubscription:
        stream = await self._declare_stream(channel)
        # aio-pika's robust queue re-consumes with this very dict after a reconnect;
        # moving the offset past each delivered event makes it resume right after the
        # last one seen, instead of at "next" (which would skip what came in between).
        arguments: dict[str, Any] = {"x-stream-offset": "next"}

        async def on_message(message: AbstractIncomingMessage) -> None:
            offset = message.headers.get("x-stream-offset")
            if isinstance(offset, int):
                if (
                    isinstance(arguments["x-stream-offset"], int)
                    and offset < arguments["x-stream-offset"]
                ):
                    await message.ack()  # redelivered after a reconnect: seen already
                    return
                arguments["x-stream-offset"] = offset + 1
            try:
                if message.routing_key and topic_matches(pattern, message.routing_key):
                    await handler(CloudEvent.from_json(message.body))
            except ValidationError:
                log.error("dropping malformed event %s from the stream", message.message_id)
            except Exception:
                log.exception("stream handler failed for %s", message.message_id)
            finally:
                await message.ack()  # a stream ack only grants credit; the event stays

        tag = await stream.consume(on_message, arguments=arguments)
        return _AmqpSubscription(channel, stream, tag)

    async def _work_queue(
        self, channel: AbstractRobustChannel, pattern: str, handler: Handler, name: str
    ) -> _AmqpSubscription:
        dead = await channel.declare_queue(f"{name}.dlq", durable=True)
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead.name},
        )
        await queue.bind(self.exchange_name, routing_key=pattern)

        async def on_message(message: AbstractIncomingMessage) -> None:
            async with message.process(requeue=False):
                await handler(CloudEvent.from_json(message.body))

        tag = await queue.consume(on_message)
        return _AmqpSubscription(channel, queue, tag)
