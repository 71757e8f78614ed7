"""Pending usage events in memory: :class:`MemoryStore`."""

from __future__ import annotations

from collections import deque
from typing import Any, TypeAlias

from .events import UsageEvent

__all__ = ["MemoryStore"]


_Row: TypeAlias = "tuple[float, int, int]"
"""What the memory store keeps of a waiting event besides its payload: created_at, seq,
attempts (a :class:`UsageEvent` is made only for the events in flight)."""


class MemoryStore:
    """Pending events in memory, in enqueue (seq) order, the batches in flight aside.

    Two deques in step, the payloads and the rest, rather than one of ``(payload, ...)``
    tuples: a dict of plain values and a tuple of numbers are both left alone by Python's
    garbage collector, but a tuple holding a dict is tracked for good, and with 100,000
    events waiting (ChatarminOS down) each full collection then scanned them all, a pause of
    tens of milliseconds in whichever thread was enqueueing.
    """

    def __init__(self) -> None:
        self._payloads: deque[dict[str, Any]] = deque()
        self._rows: deque[_Row] = deque()
        self._in_flight: list[UsageEvent] = []
        self._seq = 0

    def add(self, payload: dict[str, Any], now: float) -> None:
        """Append an event."""
        self._seq += 1
        self._payloads.append(payload)
        self._rows.append((now, self._seq, 0))

    def has_room(self, max_pending: int) -> bool:
        """Whether one more event fits."""
        return len(self._rows) + len(self._in_flight) < max_pending

    def waiting(self) -> int:
        """Events waiting (not in flight)."""
        return len(self._rows)

    def take(self, now: float, limit: int, interval: float, upto: int) -> list[UsageEvent]:
        """The next batch when one is due (full, old enough, or asked for by a flush)."""
        rows = self._rows
        if not rows:
            return []
        created_at, seq, _ = rows[0]
        if len(rows) < limit and created_at > now - interval and seq > upto:
            return []
        payload, row = self._payloads.popleft, rows.popleft
        batch = [UsageEvent(payload(), *row()) for _ in range(min(limit, len(rows)))]
        self._in_flight.extend(batch)
        return batch

    def next_due(self, now: float, interval: float) -> float | None:
        """Seconds until the oldest waiting event is due; ``None`` when none waits."""
        if not self._rows:
            return None
        return max(0.0, self._rows[0][0] + interval - now)

    def settle(self, done: list[UsageEvent], again: list[UsageEvent]) -> None:
        """Forget answered events; put the others back in front, in seq order."""
        finished = {id(event) for event in done} | {id(event) for event in again}
        self._in_flight = [event for event in self._in_flight if id(event) not in finished]
        if not again:
            return
        back = [(e.payload, (e.created_at, e.seq, e.attempts + 1)) for e in again]
        rows = self._rows
        if rows and back[-1][1][1] > rows[0][1]:  # another batch came back first: merge
            merged = sorted(
                [*back, *zip(self._payloads, rows, strict=True)], key=lambda item: item[1][1]
            )
            self._payloads = deque(payload for payload, _ in merged)
            self._rows = deque(row for _, row in merged)
        else:
            self._payloads.extendleft([payload for payload, _ in reversed(back)])
            rows.extendleft([row for _, row in reversed(back)])

    def last_seq(self) -> int:
        """The sequence number of the last event enqueued (0: none yet)."""
        return self._seq

    def unresolved_upto(self, seq: int) -> int:
        """How many events numbered up to ``seq`` are still pending."""
        count = sum(1 for event in self._in_flight if event.seq <= seq)
        rows = self._rows
        if rows and rows[-1][1] <= seq:
            return count + len(rows)
        for row in rows:
            if row[1] > seq:
                break
            count += 1
        return count

    def pending(self) -> int:
        """Events enqueued and not answered."""
        return len(self._rows) + len(self._in_flight)

    def oldest(self) -> float | None:
        """When the oldest pending event was enqueued."""
        times = [event.created_at for event in self._in_flight]
        if self._rows:
            times.append(self._rows[0][0])
        return min(times) if times else None

    def has_leftovers(self) -> bool:
        """Memory holds nothing from an earlier process."""
        return False

    def after_fork(self) -> None:
        """The parent's events are the parent's to send."""
        self._payloads = deque()
        self._rows = deque()
        self._in_flight = []

    def close(self) -> None:
        """Nothing to close."""
