"""The counts a chaos test is judged by, computed from what its clients recorded.

Jepsen-style: every acknowledged write and every delivered event is accounted for,
and a property holds when its count of violations is zero.

* per subscriber and channel: **lost** (an event of a write acknowledged while it was
  subscribed that never arrived), **duplicated** (an event id delivered twice),
  **out of order** (a ``sequence`` not above the one delivered before it);
* **errors outside the window**: a client-visible error that started after the fault
  ended plus the grace period, or ended before the fault began.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .workload import Drop, Outcome, Subscriber


@dataclass(frozen=True)
class Window:
    """The fault, in monotonic time, and how long after it errors may still be seen."""

    start: float
    end: float
    grace: float

    def excuses(self, started: float, ended: float) -> bool:
        return ended >= self.start and started <= self.end + self.grace


@dataclass
class StreamCounts:
    delivered: int = 0
    lost: list[str] = field(default_factory=list)  # subjects (author ids)
    duplicated: list[str] = field(default_factory=list)  # event ids
    out_of_order: list[tuple[int, int]] = field(default_factory=list)  # (before, after)


def stream_counts(subscriber: Subscriber, expected: dict[str, Outcome]) -> StreamCounts:
    """``expected``: acknowledged writes by author id; those acknowledged after the
    subscriber's first subscription must each arrive as a ``created`` event."""
    counts = StreamCounts(delivered=len(subscriber.received))
    ids = Counter(r.event_id for r in subscriber.received)
    counts.duplicated = sorted(event_id for event_id, n in ids.items() if n > 1)
    previous: dict[str, int] = {}
    seen: set[str] = set()
    for event in subscriber.received:
        if event.event_id in seen:
            continue  # counted as a duplicate, not again as out of order
        seen.add(event.event_id)
        before = previous.get(event.channel)
        if before is not None and event.sequence <= before:
            counts.out_of_order.append((before, event.sequence))
        previous[event.channel] = max(event.sequence, before or 0)
    created = {r.subject for r in subscriber.received if r.type == "gatehouse.author.created"}
    since = subscriber.subscribed_at
    owed = [i for i, o in expected.items() if since is not None and o.started >= since]
    counts.lost = sorted(set(owed) - created)
    return counts


def errors_outside(outcomes: list[Outcome], window: Window) -> list[Outcome]:
    return [o for o in outcomes if o.failed and not window.excuses(o.started, o.ended)]


def drops_outside(drops: list[Drop], window: Window) -> list[Drop]:
    return [d for d in drops if not window.excuses(d.at, d.at)]


def error_span(outcomes: list[Outcome], window: Window) -> dict[str, Any]:
    """How many requests failed and for how long, relative to the fault."""
    failed = [o for o in outcomes if o.failed]
    if not failed:
        return {"errors": 0, "errors_after_fault_s": 0.0}
    last = max(o.ended for o in failed)
    kinds = Counter(f"{o.status or 'no answer'} {o.detail}"[:60] for o in failed)
    return {
        "errors": len(failed),
        "first_error_s": round(min(o.started for o in failed) - window.start, 2),
        "errors_after_fault_s": round(max(0.0, last - window.end), 2),
        "kinds": dict(kinds.most_common(5)),
    }
