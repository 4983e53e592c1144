"""Through the real RabbitMQ: an event published by another process reaches a client."""

from __future__ import annotations

from typing import Any

import pytest

from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.events import CloudEvent


@pytest.mark.services
async def test_an_event_on_the_broker_reaches_a_subscribed_client(
    amqp_namespace: Any, issuer: Any, start_realtime: Any
) -> None:
    publisher = AmqpEventBus(amqp_namespace.url, exchange=amqp_namespace.exchange)
    event = CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.created",
        subject="5",
        data={"id": "5", "name": "Grace"},
    )
    settings = {"amqp_url": amqp_namespace.url, "amqp_exchange": amqp_namespace.exchange}
    async with start_realtime(**settings) as rt, rt.connect(issuer.token()) as client:
        await client.call(id="1", op="subscribe", channel="authors.5")
        await publisher.start()
        try:
            await publisher.publish(event)
        finally:
            await publisher.close()
        pushed = await client.receive()
    assert pushed["channel"] == "authors.5"
    assert pushed["event"]["id"] == event.id
    assert pushed["event"]["data"] == {"id": "5", "name": "Grace"}
