"""The per-channel history: duplicates, rings, expiry and what can be recovered."""

from __future__ import annotations

import time

from gatehouse.realtime.history import (
    HISTORY_EXPIRED,
    HISTORY_UNAVAILABLE,
    POSITION_UNKNOWN,
    History,
)

SOURCE = "/gatehouse/authors"


def history(size: int = 10, ttl: float = 60, max_events: int = 1000) -> History:
    return History(size=size, ttl=ttl, max_events=max_events)


def feed(h: History, channel: str, *sequences: int) -> list[bool]:
    return [h.accept(channel, SOURCE, seq, f'{{"sequence":{seq}}}') for seq in sequences]


def sequences(events: list[str]) -> list[int]:
    return [int(e.split(":")[1].rstrip("}")) for e in events]


def test_an_event_at_or_below_the_channels_last_sequence_is_a_duplicate() -> None:
    h = history()
    assert feed(h, "authors", 1, 2, 3, 2, 3, 1, 4) == [True, True, True, False, False, False, True]


def test_a_replayed_batch_is_dropped_and_the_sequence_never_goes_backwards() -> None:
    h = history()
    batch = list(range(1988, 2088))
    assert all(feed(h, "authors", *batch))
    assert not any(feed(h, "authors", *batch))  # the relay published the batch again
    assert feed(h, "authors", 2088) == [True]


def test_recovery_replays_exactly_what_followed_in_order() -> None:
    h = history()
    feed(h, "authors", *range(1, 8))
    recovery = h.recover("authors", SOURCE, 3)
    assert recovery.recovered
    assert recovery.reason is None
    assert sequences(recovery.events) == [4, 5, 6, 7]
    assert h.recover("authors", SOURCE, 7).events == []


def test_a_sparse_channel_recovers_across_sequences_of_other_channels() -> None:
    h = history()
    feed(h, "authors", 10, 11, 12, 13)
    feed(h, "authors.a", 11)
    recovery = h.recover("authors.a", SOURCE, 10)
    assert recovery.recovered
    assert sequences(recovery.events) == [11]
    nothing_new = h.recover("authors.b", SOURCE, 12)  # a channel with no event at all
    assert nothing_new.recovered
    assert nothing_new.events == []


def test_before_the_first_event_read_nothing_is_known() -> None:
    h = history()
    feed(h, "authors", 50, 51)
    assert h.recover("authors", SOURCE, 49).recovered
    assert h.recover("authors", SOURCE, 48).reason == HISTORY_EXPIRED
    assert h.recover("authors", "/gatehouse/other", 1).reason == HISTORY_UNAVAILABLE
    assert h.recover("authors", SOURCE, 52).reason == POSITION_UNKNOWN


def test_a_full_ring_forgets_its_oldest_and_says_so() -> None:
    h = history(size=3)
    feed(h, "authors", 1, 2, 3, 4, 5)
    assert sequences(h.recover("authors", SOURCE, 2).events) == [3, 4, 5]
    assert h.recover("authors", SOURCE, 1).reason == HISTORY_EXPIRED
    assert h.held == 3


def test_the_global_cap_evicts_oldest_first_across_channels() -> None:
    h = history(size=10, max_events=4)
    feed(h, "authors.a", 1)
    feed(h, "authors.b", 2)
    feed(h, "authors", 3, 4, 5)
    assert h.held == 4
    assert h.recover("authors.a", SOURCE, 0).reason == HISTORY_EXPIRED
    assert h.recover("authors.b", SOURCE, 1).recovered
    assert h.channels == 2  # authors.a is gone; the source floor speaks for it
    assert feed(h, "authors.a", 1) == [False]  # still a duplicate


def test_expired_events_go_and_the_channel_floor_rises() -> None:
    h = history(ttl=10)
    feed(h, "authors", 1, 2)
    h.expire(time.monotonic() + 11)
    assert h.held == 0
    assert h.recover("authors", SOURCE, 1).reason == HISTORY_EXPIRED
    assert h.recover("authors", SOURCE, 2).recovered
    assert feed(h, "authors", 2, 3) == [False, True]
