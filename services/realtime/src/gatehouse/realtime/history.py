"""Per-channel history: what a client missed, and whether it can be told exactly.

Every event of a channel carries the ``sequence`` its source's relay stamped, in
publication order; a channel is fed by one source (see :mod:`.channels`). Each
channel keeps a ring of its last events (``size``), and all rings together keep at
most ``max_events`` events no older than ``ttl`` seconds, evicted oldest first
across channels. The history also decides what is delivered at all: an event at or
below its channel's last accepted sequence is a duplicate (the broker and the relay
deliver at least once) and is dropped, so a client never sees one twice or out of
order.

Recovery (Centrifugo's semantics): a client that last saw ``since`` on a channel is
*recovered* when this replica holds every event of that channel after ``since``;
then exactly those are replayed, in order. Completeness is tracked by a *floor* per
source and per channel: every event above the floor that this replica read is
still held. The source floor starts just below the first sequence read from the
stream and rises with each event evicted oldest-first (all older ones of the source
are gone too); a channel's own floor rises when its ring overflows.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

# Why a subscription with ``since`` was not recovered (the client refetches over HTTP).
HISTORY_EXPIRED = "history_expired"  # events after ``since`` have left the history
HISTORY_UNAVAILABLE = "history_unavailable"  # this replica has read nothing of the source
POSITION_UNKNOWN = "position_unknown"  # ``since`` is ahead of everything this replica read


@dataclass(slots=True)
class _Channel:
    name: str
    source: str
    entries: deque[_Entry]
    last: int  # the last sequence accepted on this channel
    floor: int  # sequences at or below it may have left this channel's ring


@dataclass(slots=True)
class _Entry:
    sequence: int
    event_json: str
    at: float
    channel: _Channel | None  # None once the channel's ring let it go


@dataclass(slots=True)
class _Source:
    floor: int  # every event of the source above it that was read is still held
    top: int  # the last sequence read


@dataclass(frozen=True, slots=True)
class Recovery:
    recovered: bool
    events: list[str]  # the event JSON of what was missed, oldest first
    reason: str | None = None


class History:
    """The rings of every channel of this replica (a synchronous, single-loop object)."""

    def __init__(self, *, size: int, ttl: float, max_events: int) -> None:
        if size < 1 or max_events < 1:
            raise ValueError("history size and max_events must be at least 1")
        self.size, self.ttl, self.max_events = size, ttl, max_events
        self._channels: dict[str, _Channel] = {}
        self._sources: dict[str, _Source] = {}
        self._oldest: deque[_Entry] = deque()  # every entry, oldest first, some let go
        self._let_go = 0  # entries of _oldest whose ring already dropped them

    def accept(self, channel: str, source: str, sequence: int, event_json: str) -> bool:
        """Record an event of ``channel``; False when it is a duplicate (not above the last)."""
        state = self._channels.get(channel)
        known = self._sources.get(source)
        last = state.last if state is not None else known.floor if known is not None else None
        if last is not None and sequence <= last:
            return False
        if known is None:
            known = self._sources[source] = _Source(floor=sequence - 1, top=sequence)
        known.top = max(known.top, sequence)
        if state is None:
            state = self._channels[channel] = _Channel(channel, source, deque(), 0, known.floor)
        state.last = sequence
        self._hold(state, _Entry(sequence, event_json, time.monotonic(), state))
        return True

    def top(self, source: str) -> int | None:
        """The last sequence of ``source`` this replica read (None: nothing yet)."""
        known = self._sources.get(source)
        return known.top if known is not None else None

    def recover(self, channel: str, source: str, since: int) -> Recovery:
        """Every held event of ``channel`` after ``since``, if that is all of them."""
        self.expire()
        known = self._sources.get(source)
        if known is None:
            return Recovery(False, [], HISTORY_UNAVAILABLE)
        if since > known.top:
            return Recovery(False, [], POSITION_UNKNOWN)
        state = self._channels.get(channel)
        floor = max(known.floor, state.floor) if state is not None else known.floor
        if since < floor:
            return Recovery(False, [], HISTORY_EXPIRED)
        if state is None:
            return Recovery(True, [])
        return Recovery(True, [e.event_json for e in state.entries if e.sequence > since])

    def expire(self, now: float | None = None) -> None:
        """Drop what is older than ``ttl`` (called on every event and by a timer)."""
        horizon = (time.monotonic() if now is None else now) - self.ttl
        while self._oldest and self._oldest[0].at < horizon:
            self._evict_oldest()

    @property
    def held(self) -> int:
        """Events held, counted once per channel."""
        return len(self._oldest) - self._let_go

    @property
    def channels(self) -> int:
        return len(self._channels)

    def _hold(self, state: _Channel, entry: _Entry) -> None:
        if len(state.entries) >= self.size:
            dropped = state.entries.popleft()
            state.floor = max(state.floor, dropped.sequence)
            dropped.channel, dropped.event_json = None, ""  # its slot in _oldest stays
            self._let_go += 1
        state.entries.append(entry)
        self._oldest.append(entry)
        self.expire(entry.at)
        while self.held > self.max_events:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        entry = self._oldest.popleft()
        state = entry.channel
        if state is None:
            self._let_go -= 1
            return
        source = self._sources[state.source]
        # Oldest first: every event of the source up to this one has gone from every ring.
        source.floor = max(source.floor, entry.sequence)
        state.entries.popleft()
        if not state.entries:  # its last event is at or below the source floor now
            del self._channels[state.name]
