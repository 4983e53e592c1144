import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatehouse.common.events import CloudEvent, InMemoryEventBus, topic_matches

words = st.lists(st.sampled_from(["a", "b", "author", "created"]), min_size=1, max_size=5)


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("gatehouse.author.*", "gatehouse.author.created", True),
        ("gatehouse.author.*", "gatehouse.author.created.late", False),
        ("gatehouse.#", "gatehouse", True),
        ("gatehouse.#", "gatehouse.book.deleted", True),
        ("a.#", "ab", False),
        ("a.#.c", "a.x.y.c", True),
        ("gatehouse.book.*", "gatehouse.author.created", False),
    ],
)
def test_topic_patterns_follow_amqp_semantics(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


@given(words)
def test_hash_matches_every_key_and_exact_pattern_matches_itself(key_words: list[str]) -> None:
    key = ".".join(key_words)
    assert topic_matches("#", key)
    assert topic_matches(key, key)
    assert topic_matches(".".join("*" for _ in key_words), key)


def test_cloudevent_round_trips_through_json() -> None:
    event = CloudEvent(
        source="/gatehouse/authors",
        type="gatehouse.author.created",
        subject="42",
        data={"name": "Ursula"},
        sequence=7,
    )
    again = CloudEvent.from_json(event.to_json())
    assert again == event
    assert again.specversion == "1.0"
    assert again.id == event.id


async def test_in_memory_bus_delivers_to_matching_subscribers_only() -> None:
    bus = InMemoryEventBus()
    got: list[str] = []
    done = asyncio.Event()

    async def authors(event: CloudEvent) -> None:
        got.append(f"authors:{event.type}")
        done.set()

    async def books(event: CloudEvent) -> None:
        got.append(f"books:{event.type}")

    await bus.subscribe("gatehouse.author.*", authors)
    await bus.subscribe("gatehouse.book.*", books)
    await bus.publish(CloudEvent(source="/t", type="gatehouse.author.created"))
    await asyncio.wait_for(done.wait(), 1)
    assert got == ["authors:gatehouse.author.created"]
    await bus.close()


async def test_in_memory_bus_survives_a_failing_handler() -> None:
    bus = InMemoryEventBus()
    received = asyncio.Event()

    async def broken(event: CloudEvent) -> None:
        raise RuntimeError("boom")

    async def fine(event: CloudEvent) -> None:
        received.set()

    await bus.subscribe("#", broken)
    sub = await bus.subscribe("#", fine)
    await bus.publish(CloudEvent(source="/t", type="x.y"))
    await asyncio.wait_for(received.wait(), 1)
    await sub.cancel()
    received.clear()
    await bus.publish(CloudEvent(source="/t", type="x.y"))
    await asyncio.sleep(0.05)
    assert not received.is_set()
    await bus.close()
