"""The ledger in this process: exact across its threads and tasks, nothing shared further.

Every operation is one short critical section under a ``threading.Lock`` with no waiting
inside, so the same object serves the async and the blocking client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .rules import (
    DEFAULT_FLIGHT_TIMEOUT,
    DEFAULT_HOLD_TIMEOUT,
    DEFAULT_REFRESH,
    HoldVerdict,
    LedgerFigures,
)

__all__ = ["MemoryLedger"]

Slot = tuple[str, str]
"""(company id, feature code)."""


class _Entry:
    __slots__ = ("enabled", "flights", "holds", "limit", "loaded", "reported", "stale")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.enabled = False
        self.reported = 0
        self.loaded = 0.0
        self.stale = True
        self.holds: dict[str, tuple[int, float]] = {}  # hold id -> (quantity, expires)
        self.flights: dict[str, tuple[int, float]] = {}  # idempotency key -> (quantity, expires)

    def purge(self, now: float) -> None:
        for table in (self.holds, self.flights):
            if table:
                for key in [k for k, (_, expires) in table.items() if expires <= now]:
                    del table[key]

    def used(self) -> int:
        return (
            self.reported
            + sum(q for q, _ in self.holds.values())
            + sum(q for q, _ in self.flights.values())
        )


class MemoryLedger:
    """Holds and in-flight usage per (company, feature) of one product, in this process."""

    def __init__(
        self,
        *,
        hold_timeout: float = DEFAULT_HOLD_TIMEOUT,
        flight_timeout: float = DEFAULT_FLIGHT_TIMEOUT,
        refresh: float = DEFAULT_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hold_timeout = hold_timeout
        self.flight_timeout = flight_timeout
        self.refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Slot, _Entry] = {}

    def __repr__(self) -> str:
        return f"<MemoryLedger entries={len(self._entries)}>"

    def after_fork_in_child(self) -> None:
        """A forked child starts empty: the parent's holds are the parent's."""
        self._lock = threading.Lock()
        self._entries = {}

    def hold(self, slot: Slot, hold_id: str, quantity: int) -> HoldVerdict:
        """Hold ``quantity`` when it fits under the limit."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None or entry.stale or now - entry.loaded >= self.refresh:
                return HoldVerdict("miss")
            if not entry.enabled:
                return HoldVerdict("disabled")
            if entry.limit is None:
                return HoldVerdict("unlimited")
            entry.purge(now)
            left = entry.limit - entry.used()
            if quantity > left:
                return HoldVerdict("refused", remaining=left, limit=entry.limit)
            entry.holds[hold_id] = (quantity, now + self.hold_timeout)
            return HoldVerdict("held", remaining=left - quantity, limit=entry.limit)

    def load(self, slot: Slot, *, limit: int | None, usage: int, enabled: bool) -> None:
        """The server's figures for ``slot`` (from a check): a fresh or stale entry takes
        them; a live one keeps the higher usage (the server's count only grows)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.setdefault(slot, _Entry())
            fresh = not entry.stale and now - entry.loaded < self.refresh
            entry.reported = max(entry.reported, usage) if fresh else usage
            entry.limit, entry.enabled = limit, enabled
            entry.loaded, entry.stale = now, False

    def commit(self, slot: Slot, hold_id: str, quantity: int, key: str) -> bool:
        """Turn a hold into ``quantity`` in flight under the event's idempotency ``key``.

        Returns whether the hold was still live (``False``: it had expired or was
        released; the usage is in flight all the same, since it is being metered).
        """
        now = self._clock()
        with self._lock:
            entry = self._entries.setdefault(slot, _Entry())
            hold = entry.holds.pop(hold_id, None)
            had = hold is not None and hold[1] > now  # an expired one is not held any more
            if quantity > 0:
                entry.flights[key] = (quantity, now + self.flight_timeout)
            return had

    def release(self, slot: Slot, hold_id: str) -> bool:
        """Give a hold back; ``False`` when it was gone already."""
        with self._lock:
            entry = self._entries.get(slot)
            return entry is not None and entry.holds.pop(hold_id, None) is not None

    def acknowledge(self, slot: Slot, key: str, usage: int | None) -> None:
        """The server counted the event ``key`` (or saw it before): usage ``usage`` now."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return
            entry.flights.pop(key, None)
            if usage is not None:
                entry.reported = max(entry.reported, usage)

    def refused(self, slot: Slot, key: str) -> None:
        """The server refused the event ``key``: it is not in flight, and the entry asks the
        server again before the next hold."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None:
                entry.flights.pop(key, None)
                entry.stale = True

    def dropped(self, slot: Slot, key: str) -> None:
        """The event ``key`` will not be sent (given up on): no longer in flight."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None:
                entry.flights.pop(key, None)

    def figures(self, slot: Slot) -> LedgerFigures | None:
        """The entry's figures now (expired holds and flights left out), or ``None``."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return None
            entry.purge(now)
            return LedgerFigures(
                limit=entry.limit,
                reported=entry.reported,
                held=sum(q for q, _ in entry.holds.values()),
                in_flight=sum(q for q, _ in entry.flights.values()),
                enabled=entry.enabled,
            )
