"""The event bus the service owns when the launcher does not hand it one."""

from __future__ import annotations

from gatehouse.authors.settings import AuthorsSettings
from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.events import EventBus, InMemoryEventBus


def build_bus(settings: AuthorsSettings) -> EventBus:
    """RabbitMQ when ``AMQP_URL`` is set, else the in-process bus (not started yet)."""
    if settings.amqp_url:
        return AmqpEventBus(settings.amqp_url, exchange=settings.amqp_exchange)
    return InMemoryEventBus()
