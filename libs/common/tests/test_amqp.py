"""The RabbitMQ adapter against the real broker of the development machine."""

import asyncio
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest

from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import CloudEvent
from gatehouse.testing import TcpProxy

pytestmark = pytest.mark.services


async def test_every_fan_out_subscriber_sees_every_event(amqp_namespace) -> None:
    bus = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await bus.start()
    first: asyncio.Queue[CloudEvent] = asyncio.Queue()
    second: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await bus.subscribe("gatehouse.author.*", first.put)
    await bus.subscribe("gatehouse.#", second.put)
    await asyncio.sleep(0.2)  # consumers attach at the stream's "next" offset
    sent = [
        CloudEvent(source="/t", type="gatehouse.author.created", data={"n": i}) for i in range(3)
    ]
    for event in sent:
        await bus.publish(event)
    for queue in (first, second):
        got = [await asyncio.wait_for(queue.get(), 5) for _ in sent]
        assert [e.id for e in got] == [e.id for e in sent]
    await bus.close()


async def test_the_stream_keeps_events_for_late_readers(amqp_namespace) -> None:
    bus = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await bus.start()
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = CloudEvent(source="/t", type="gatehouse.author.created", traceparent=trace)
    await bus.publish(event)
    await bus.close()
    connection = await aio_pika.connect(amqp_namespace.url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=10)
        stream = await channel.declare_queue(
            f"{amqp_namespace.exchange}.stream",
            durable=True,
            arguments={"x-queue-type": "stream", "x-max-age": "7D"},
        )
        got: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        await stream.consume(got.put, arguments={"x-stream-offset": "first"})
        message = await asyncio.wait_for(got.get(), 5)
        assert CloudEvent.from_json(message.body).id == event.id
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers["traceparent"] == trace  # for readers that skip the body
        await message.ack()


async def test_unreachable_broker_is_a_startup_error_naming_the_setting() -> None:
    bus = AmqpEventBus("amqp://guest:guest@127.0.0.1:1/", setting="AMQP_URL")
    with pytest.raises(ConfigurationError, match="AMQP_URL"):
        await bus.start()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("/no-such-vhost", "refused the virtual host 'no-such-vhost': it does not exist"),
        ("password", "refused the user 'guest' (wrong user or password)"),
    ],
)
async def test_a_broker_that_refuses_says_why_in_one_line(
    amqp_namespace, change: str, expected: str
) -> None:
    parts = urlsplit(amqp_namespace.url)
    if change == "password":
        url = urlunsplit(parts._replace(netloc=f"guest:wrong-s3cret@{parts.hostname}:{parts.port}"))
    else:
        url = urlunsplit(parts._replace(path=change))
    with pytest.raises(ConfigurationError) as refused:
        await AmqpEventBus(url).start()
    message = str(refused.value)
    assert message.startswith("AMQP_URL: RabbitMQ at amqp://")
    assert expected in message
    assert "\n" not in message
    assert "wrong-s3cret" not in message


async def test_a_fan_out_subscriber_resumes_after_a_cut_without_loss_or_repeat(
    amqp_namespace,
) -> None:
    link = TcpProxy.to_url(amqp_namespace.url)
    await link.start()
    reader = AmqpEventBus(
        link.url_for(amqp_namespace.url), exchange=amqp_namespace.exchange, reconnect_interval=0.2
    )
    writer = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await writer.start()
    await reader.start()
    got: asyncio.Queue[CloudEvent] = asyncio.Queue()
    await reader.subscribe("gatehouse.#", got.put)
    await asyncio.sleep(0.2)
    first = CloudEvent(source="/t", type="gatehouse.author.created", data={"n": 0})
    await writer.publish(first)
    assert (await asyncio.wait_for(got.get(), 5)).id == first.id

    await link.drop()  # the reader's connection drops; events keep arriving at the broker
    during = [
        CloudEvent(source="/t", type="gatehouse.author.created", data={"n": n}) for n in (1, 2, 3)
    ]
    for event in during:
        await writer.publish(event)

    after_reconnect = [await asyncio.wait_for(got.get(), 15) for _ in during]
    assert [e.id for e in after_reconnect] == [e.id for e in during]
    await asyncio.sleep(0.3)
    assert got.empty(), "the event seen before the cut was delivered again"
    await reader.close()
    await writer.close()
    await link.close()


def numbered(count: int, start: int = 0) -> list[CloudEvent]:
    return [
        CloudEvent(source="/t", type="gatehouse.author.created", data={"n": n})
        for n in range(start, start + count)
    ]


async def test_a_new_subscriber_cut_before_its_first_event_loses_nothing(amqp_namespace) -> None:
    """Regression: the consumer started at offset "next" and kept it until its first
    delivery, so a reconnect before that skipped whatever came in between."""
    writer = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    await writer.start()
    async with TcpProxy.to_url(amqp_namespace.url) as proxy:
        reader = AmqpEventBus(
            proxy.url_for(amqp_namespace.url),
            exchange=amqp_namespace.exchange,
            reconnect_interval=0.2,
        )
        await reader.start()
        got: asyncio.Queue[CloudEvent] = asyncio.Queue()
        await reader.subscribe("gatehouse.#", got.put)
        await asyncio.sleep(0.3)  # attached, nothing delivered yet

        await proxy.cut()  # a broker outage as this replica sees it
        during = numbered(20)
        for event in during:
            await writer.publish(event)
        await asyncio.sleep(0.5)  # the reader retries and is refused meanwhile
        proxy.restore()

        after = [await asyncio.wait_for(got.get(), 15) for _ in during]
        assert [e.id for e in after] == [e.id for e in during]
        await asyncio.sleep(0.3)
        assert got.empty()
        await reader.close()
    await writer.close()


async def test_cancelling_a_subscription_while_the_broker_is_away_does_not_hang(
    amqp_namespace,
) -> None:
    async with TcpProxy.to_url(amqp_namespace.url) as proxy:
        bus = AmqpEventBus(
            proxy.url_for(amqp_namespace.url),
            exchange=amqp_namespace.exchange,
            reconnect_interval=0.2,
        )
        await bus.start()
        got: asyncio.Queue[CloudEvent] = asyncio.Queue()
        subscription = await bus.subscribe("gatehouse.#", got.put)
        await proxy.cut()
        await asyncio.sleep(0.3)
        await asyncio.wait_for(subscription.cancel(), 2)
        await asyncio.wait_for(bus.close(), 2)
