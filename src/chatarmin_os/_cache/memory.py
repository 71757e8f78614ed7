"""The in-process level of the cache: an LRU of :class:`Entry` keyed by tuples."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from .._models import UsageResult
from .options import CacheCounters
from .rules import Key, apply_usage, near_limit

__all__ = ["Entry", "Level1"]


class Entry:
    """One cached answer: its value (provenance ``"cache"``), when it was fetched, until when
    it answers as fresh, the company it belongs to, and (read from Redis) the bytes it was
    decoded from, so reading the same bytes again needs no decoding.

    ``fresh_until`` (what the hit path reads) is ``ttl_until`` unless the entry is ``near``
    its limit (the margin rule) or ``expired`` (a refused usage, a late usage result, a
    change that overtook its load): then it is ``fetched_at``, and the entry only serves
    stale answers. Change those through :meth:`update`.
    """

    __slots__ = (
        "company",
        "expired",
        "fetched_at",
        "fresh_until",
        "near",
        "raw",
        "ttl_until",
        "value",
    )

    def __init__(
        self,
        value: Any,
        fetched_at: float,
        ttl_until: float,
        company: str | None,
        *,
        near: bool = False,
        raw: object = None,
    ) -> None:
        self.value = value
        self.fetched_at = fetched_at
        self.ttl_until = ttl_until
        self.near = near
        self.expired = False
        self.fresh_until = fetched_at if near else ttl_until
        self.company = company
        self.raw = raw

    def update(
        self,
        *,
        ttl_until: float | None = None,
        near: bool | None = None,
        expired: bool | None = None,
    ) -> None:
        if ttl_until is not None:
            self.ttl_until = ttl_until
        if near is not None:
            self.near = near
        if expired is not None:
            self.expired = expired
        self.fresh_until = self.fetched_at if self.near or self.expired else self.ttl_until


class Level1:
    """The in-process LRU: thread-safe, fork-reset by its owner.

    Reads on the hot path are a dict lookup plus ``move_to_end`` (C, atomic under the GIL);
    every change holds ``lock`` (never across an ``await``). ``version`` counts changes, and
    ``changed`` remembers the version at which a company, an org or everything last changed,
    so a load that started before a change of its scope stores its answer already expired
    (it may predate the change).
    """

    def __init__(self, max_entries: int, counters: CacheCounters, margin: float) -> None:
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        self.max_entries = max_entries
        self.margin = margin
        self.counters = counters
        self.lock = threading.Lock()
        self.by_company: dict[str, set[Key]] = {}
        self.version = 0
        self.changed: dict[tuple[str, str], int] = {}
        self.forgotten = 0  # changes up to this version are no longer in `changed`

    def touch(self, key: Key) -> None:
        """Mark ``key`` most recently used."""
        try:  # noqa: SIM105 - the hot path: a context manager costs more
            self.entries.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile
            pass

    # loads

    def begin_load(self) -> int:
        """The version a load starts at (give it back to :meth:`put`); no lock needed."""
        return self.version

    def _changed_since(self, start: int, key: Key, company: str | None) -> bool:
        if start >= self.version:
            return False
        if self.forgotten > start:
            return True
        changed = self.changed
        if changed.get(("*", ""), 0) > start:
            return True
        if company is not None and changed.get(("c", company), 0) > start:
            return True
        if key[0] in ("o", "a"):
            return changed.get(("o", key[1]), 0) > start or changed.get(("o", "*"), 0) > start
        return False

    def _mark(self, *scopes: tuple[str, str]) -> None:
        self.version += 1
        changed = self.changed
        for scope in scopes:
            changed[scope] = self.version
        if len(changed) > 4 * self.max_entries + 16:  # bounded: forget, and say so
            changed.clear()
            self.forgotten = self.version

    # changes

    def put(self, key: Key, entry: Entry, started: int) -> None:
        """Store ``entry``; expired at once when a change overtook the load begun at ``started``."""
        with self.lock:
            if self._changed_since(started, key, entry.company):
                entry.update(expired=True)
            old = self.entries.get(key)
            if old is not None and old.company == entry.company:  # the index stays right
                self.entries[key] = entry
                self.entries.move_to_end(key)
                return
            self._remove(key)
            self.entries[key] = entry
            if entry.company is not None:
                self.by_company.setdefault(entry.company, set()).add(key)
            while len(self.entries) > self.max_entries:
                old_key, old = self.entries.popitem(last=False)
                self._unindex(old_key, old)
                self.counters.evictions += 1

    def refresh(self, key: Key, entry: Entry, fresh_until: float, started: int) -> bool:
        """Let ``entry`` (still the one held for ``key``, and not near its limit) answer as
        fresh until ``fresh_until``; whether it may (nothing changed it meanwhile)."""
        with self.lock:
            if (
                entry.near
                or entry.expired
                or self.entries.get(key) is not entry
                or self._changed_since(started, key, entry.company)
            ):
                return False
            entry.update(ttl_until=fresh_until)
            return fresh_until > entry.fetched_at

    def _unindex(self, key: Key, entry: Entry) -> None:
        if entry.company is not None:
            keys = self.by_company.get(entry.company)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.by_company[entry.company]

    def _remove(self, key: Key) -> bool:
        entry = self.entries.pop(key, None)
        if entry is None:
            return False
        self._unindex(key, entry)
        return True

    def expire(self, keys: Iterable[Key]) -> None:
        """Keep these entries for stale answers, but never as fresh again."""
        with self.lock:
            for key in keys:
                entry = self.entries.get(key)
                if entry is not None:
                    entry.update(expired=True)
                    if entry.company is not None:
                        self._mark(("c", entry.company))

    def drop_key(self, key: Key) -> int:
        """Drop one entry; 1 when there was one."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return 0
            if entry.company is not None:
                self._mark(("c", entry.company))
            return int(self._remove(key))

    def drop_company(self, company: str, *, mappings: bool = False) -> int:
        """Drop a company's entries (its org mappings too with ``mappings``); how many."""
        with self.lock:
            self._mark(("c", company))
            keys = [key for key in self.by_company.get(company, ()) if mappings or key[0] != "o"]
            return sum(self._remove(key) for key in keys)

    def drop_org(self, org: str) -> int:
        """Drop an org's mapping and its ``get_access_by_external_org_id`` entry."""
        with self.lock:
            self._mark(("o", org))
            return self._remove(("o", org)) + self._remove(("a", org))

    def drop_orgs(self) -> int:
        """Drop every org mapping and org entry (``links.reset``)."""
        with self.lock:
            self._mark(("o", "*"))
            keys = [key for key in self.entries if key[0] in ("o", "a")]
            return sum(self._remove(key) for key in keys)

    def clear(self) -> int:
        with self.lock:
            self._mark(("*", ""))
            count = len(self.entries)
            self.entries.clear()
            self.by_company.clear()
            return count

    def company_keys(self, company: str) -> list[Key]:
        with self.lock:
            return list(self.by_company.get(company, ()))

    def feature_keys(self, company: str, feature: str) -> list[Key]:
        """What a change of the company's usage of ``feature`` makes wrong: its check, and
        the company's lists and org-access answers (which hold every feature)."""
        return [
            key
            for key in self.company_keys(company)
            if key[0] in ("l", "a") or key == ("c", company, feature)
        ]

    def apply_usage(self, company: str, usage: UsageResult) -> int:
        """Apply a usage result to the company's entries; how many changed."""
        changed = 0
        with self.lock:
            self._mark(("c", company))
            for key in list(self.by_company.get(company, ())):
                entry = self.entries.get(key)
                if entry is None or key[0] == "o":
                    continue
                value, fresh = apply_usage(entry.value, usage)
                if value is not entry.value or not fresh:
                    changed += 1
                entry.value = value
                entry.update(
                    near=near_limit(value, self.margin), expired=entry.expired or not fresh
                )
        return changed
