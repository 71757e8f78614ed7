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


class _Table:
    """Holds (or flights) by id: quantity and expiry, and their running sum.

    Every entry of a table lives the same timeout from a monotonic clock, so insertion order
    is expiry order: purging looks only at the expired front, and the sum is kept as entries
    come and go. A hold or a flight thus costs the same however many are outstanding (the
    buffer may have thousands in flight while ChatarminOS is unreachable).
    """

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: dict[str, tuple[int, float]] = {}  # id -> (quantity, expires)
        self.total = 0

    def add(self, key: str, quantity: int, expires: float) -> None:
        old = self.items.pop(key, None)  # again: to the back, with its new expiry
        if old is not None:
            self.total -= old[0]
        self.items[key] = (quantity, expires)
        self.total += quantity

    def pop(self, key: str) -> tuple[int, float] | None:
        got = self.items.pop(key, None)
        if got is not None:
            self.total -= got[0]
        return got

    def purge(self, now: float) -> None:
        """Drop the expired entries (at the front; should an older one ever sit behind a
        later one, it counts until it reaches the front: too much, never too little)."""
        items = self.items
        gone = []
        for key, (_, expires) in items.items():
            if expires > now:
                break
            gone.append(key)
        for key in gone:
            self.total -= items.pop(key)[0]


class _Entry:
    __slots__ = ("enabled", "flights", "holds", "limit", "loaded", "reported", "stale")

    def __init__(self) -> None:
        self.limit: int | None = None
        self.enabled = False
        self.reported = 0
        self.loaded = 0.0
        self.stale = True
        self.holds = _Table()  # by hold id
        self.flights = _Table()  # by idempotency key

    def purge(self, now: float) -> None:
        self.holds.purge(now)
        self.flights.purge(now)

    def used(self) -> int:
        return self.reported + self.holds.total + self.flights.total


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
            entry.holds.add(hold_id, quantity, now + self.hold_timeout)
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
            hold = entry.holds.pop(hold_id)
            had = hold is not None and hold[1] > now  # an expired one is not held any more
            if quantity > 0:
                entry.flights.add(key, quantity, now + self.flight_timeout)
            return had

    def release(self, slot: Slot, hold_id: str) -> bool:
        """Give a hold back; ``False`` when it was gone already."""
        with self._lock:
            entry = self._entries.get(slot)
            return entry is not None and entry.holds.pop(hold_id) is not None

    def acknowledge(self, slot: Slot, key: str, usage: int | None) -> None:
        """The server counted the event ``key`` (or saw it before): usage ``usage`` now."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return
            entry.flights.pop(key)
            if usage is not None:
                entry.reported = max(entry.reported, usage)

    def refused(self, slot: Slot, key: str) -> None:
        """The server refused the event ``key``: it is not in flight, and the entry asks the
        server again before the next hold."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None:
                entry.flights.pop(key)
                entry.stale = True

    def dropped(self, slot: Slot, key: str) -> None:
        """The event ``key`` will not be sent (given up on): no longer in flight."""
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None:
                entry.flights.pop(key)

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
                held=entry.holds.total,
                in_flight=entry.flights.total,
                enabled=entry.enabled,
            )
