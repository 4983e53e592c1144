"""The counting itself: each violation a chaos test looks for is found when it is there."""

from __future__ import annotations

from typing import Any

from .ledger import Window, drops_outside, error_span, errors_outside, stream_counts
from .workload import Drop, Outcome, Received, Subscriber


def _write(started: float, author: str, status: int | None = 201) -> Outcome:
    return Outcome(started, started + 0.01, "gw", status, "", resource_id=author)


def _event(sequence: int, author: str, event_id: str | None = None) -> Received:
    event: dict[str, Any] = {"data": {"id": author}}
    return Received(
        float(sequence),
        1,
        "authors",
        event_id or f"e{sequence}",
        sequence,
        "gatehouse.author.created",
        author,
        event,
    )


def _subscriber(*events: Received, since: float = 0.0) -> Subscriber:
    subscriber = Subscriber("s", ["gw"], "token", received=list(events))
    subscriber.subscribed_at = since
    return subscriber


ACKED = {"a": _write(1, "a"), "b": _write(2, "b"), "c": _write(3, "c")}


def test_a_clean_stream_counts_nothing() -> None:
    counts = stream_counts(_subscriber(_event(1, "a"), _event(2, "b"), _event(3, "c")), ACKED)
    assert (counts.delivered, counts.lost, counts.duplicated, counts.out_of_order) == (
        3,
        [],
        [],
        [],
    )


def test_an_event_never_delivered_is_lost() -> None:
    counts = stream_counts(_subscriber(_event(1, "a"), _event(3, "c")), ACKED)
    assert counts.lost == ["b"]


def test_writes_acknowledged_before_the_subscription_are_not_owed() -> None:
    counts = stream_counts(_subscriber(_event(3, "c"), since=2.5), ACKED)
    assert counts.lost == []


def test_the_same_event_twice_is_a_duplicate() -> None:
    again = _event(2, "b")
    counts = stream_counts(_subscriber(_event(1, "a"), again, _event(3, "c"), again), ACKED)
    assert counts.duplicated == ["e2"]
    assert counts.out_of_order == []


def test_another_event_reusing_a_sequence_is_out_of_order() -> None:
    reused = _event(2, "c", event_id="other")
    counts = stream_counts(_subscriber(_event(1, "a"), _event(2, "b"), reused), ACKED)
    assert counts.out_of_order == [(2, 2)]


def test_a_lower_sequence_after_a_higher_one_is_out_of_order() -> None:
    counts = stream_counts(_subscriber(_event(1, "a"), _event(3, "c"), _event(2, "b")), ACKED)
    assert counts.out_of_order == [(3, 2)]
    assert counts.lost == []


def test_errors_count_only_outside_the_fault_and_its_grace() -> None:
    window = Window(start=10, end=20, grace=5)
    during = _write(15, "x", status=503)
    in_grace = _write(24, "y", status=None)
    late = _write(26, "z", status=502)
    early = _write(5, "w", status=500)
    fine = _write(30, "v")
    assert errors_outside([during, in_grace, late, early, fine], window) == [late, early]
    assert error_span([during, in_grace, late], window)["errors_after_fault_s"] == 6.01


def test_a_socket_drop_after_the_grace_counts() -> None:
    window = Window(start=10, end=20, grace=5)
    drops = [Drop(12, "gw", "reset"), Drop(27, "gw", "reset")]
    assert drops_outside(drops, window) == [drops[1]]
