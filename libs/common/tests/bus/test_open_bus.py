"""A service that owns its bus opens the one its settings name, and its exit closes it."""

from __future__ import annotations

import contextlib

import pytest

from gatehouse.common.amqp import AmqpEventBus
from gatehouse.common.bus import open_bus
from gatehouse.common.memory_bus import InMemoryEventBus
from gatehouse.common.settings import BusSettings
from gatehouse.testing import AmqpNamespace


async def test_without_amqp_url_the_in_process_bus() -> None:
    async with contextlib.AsyncExitStack() as stack:
        bus = await open_bus(BusSettings.model_validate({"AMQP_URL": None}), stack)
        assert isinstance(bus, InMemoryEventBus)


@pytest.mark.services
async def test_amqp_url_and_exchange_name_rabbitmq_started_until_the_exit(
    amqp_namespace: AmqpNamespace,
) -> None:
    settings = BusSettings.model_validate(
        {"AMQP_URL": amqp_namespace.url, "GATEHOUSE_AMQP_EXCHANGE": amqp_namespace.exchange}
    )
    async with contextlib.AsyncExitStack() as stack:
        bus = await open_bus(settings, stack)
        assert isinstance(bus, AmqpEventBus)
        assert bus.exchange_name == amqp_namespace.exchange
        assert bus.connected()
    assert not bus.connected()
