"""Pick the event-bus adapter from a URL, the way encode/broadcaster picks its backend.

``memory://`` is the in-process bus (monolithic mode, tests); ``amqp://`` and
``amqps://`` are RabbitMQ. The bus is returned not started: its owner calls
``start()`` in its lifespan and ``close()`` at the end; :func:`open_bus` does both for
a service that owns its bus (``AMQP_URL`` and ``GATEHOUSE_AMQP_EXCHANGE``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.events import DEFAULT_MAX_DELIVERIES, EXCHANGE, EventBus
from gatehouse.common.settings import mask_url

if TYPE_CHECKING:
    from gatehouse.common.settings import BusSettings

MEMORY_URL = "memory://"
BUS_SCHEMES = ("memory", "amqp", "amqps")


def bus_from_url(
    url: str,
    *,
    exchange: str = EXCHANGE,
    setting: str = "AMQP_URL",
    max_deliveries: int | None = None,
) -> EventBus:
    """The bus that ``url`` names (not started).

    ``exchange`` isolates a deployment or a test on a shared broker (RabbitMQ only);
    ``setting`` is the variable an error names; ``max_deliveries`` overrides how
    often a work-queue event is delivered before it is dead-lettered.
    """
    scheme = urlsplit(url).scheme
    deliveries = DEFAULT_MAX_DELIVERIES if max_deliveries is None else max_deliveries
    if scheme == "memory":
        from gatehouse.common.memory_bus import InMemoryEventBus

        return InMemoryEventBus(max_deliveries=deliveries)
    if scheme in ("amqp", "amqps"):
        from gatehouse.common.amqp import AmqpEventBus

        return AmqpEventBus(url, exchange=exchange, setting=setting, max_deliveries=deliveries)
    allowed = ", ".join(f"{s}://" for s in BUS_SCHEMES)
    raise ConfigurationError(setting, f"must start with one of {allowed}; got {mask_url(url)!r}")


async def open_bus(settings: BusSettings, stack: contextlib.AsyncExitStack) -> EventBus:
    """The bus a service's ``settings`` name, started; closed when ``stack`` closes."""
    bus = bus_from_url(settings.bus_url(), exchange=settings.amqp_exchange)
    await bus.start()
    stack.push_async_callback(bus.close)
    return bus
