"""The entitlement cache: what the async and the blocking client share (no I/O, no waiting).

Options (:class:`CacheOptions`), counters (:class:`CacheStats`), the in-process level (an LRU
of :class:`Entry` keyed by tuples), the rules (TTL with jitter, the margin rule, stale and
fallback answers, usage updates, outage back-off) and the Redis layout (keys, encoding, Lua
scripts). The parts that wait — single flight, background refresh, Redis I/O — live in
``_async/_cache.py`` (and its generated twin ``_sync/_cache.py``).

The rules, in one place (the README's "Gating in the hot path" says the same for users):

* **Keys.** One cache per product (a hash of the API key and the base URL; never the key
  itself). In it: ``("c", company_id, feature_code)`` for ``features.check`` (and
  ``check_by_external_org_id``, once the org's company is known), ``("l", company_id)`` for
  ``features.list_access``, ``("a", external_org_id)`` for
  ``features.get_access_by_external_org_id`` and ``("o", external_org_id)`` for
  ``companies.get_by_product_link`` (the org -> company mapping, ``None`` included).
* **Fresh.** An entry answers for ``ttl`` seconds (± ``jitter``) after it was fetched; with
  Redis, the in-process copy for at most ``local_ttl`` seconds before it is read again.
* **Margin.** An access whose ``remaining`` is above 0 and at most ``ceil(margin ×
  quantity_limit)`` is never answered from the cache (it is stored already expired): the
  check goes to the server, because other processes may have used what is left.
* **Usage.** A ``UsageResult`` replaces usage, limit, included quantity, remaining and
  ``can_use`` of the company's cached entries for that feature when its usage is at least the
  cached one (later answers win); an older or duplicate answer expires them instead.
* **Outage.** A connection failure or a 5xx: an entry fetched less than ``max_stale`` seconds
  ago answers with ``provenance="stale"``; without one, the feature's fallback policy answers
  (``provenance="fallback"``); otherwise the error is raised. While the outage lasts, such
  answers are given without asking the server; from 1 s after the failure (doubling to 15 s)
  one background request at a time tries again, and its success ends the outage.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from ._exceptions import APIConnectionError, APIStatusError, ConfigurationError
from ._models import (
    Company,
    FeatureAccess,
    FeatureAccessBase,
    FeatureAccessDetail,
    OrgFeatureAccess,
    Provenance,
    UsageResult,
)

__all__ = [
    "CacheOptions",
    "CacheStats",
    "FallbackPolicy",
]

FallbackPolicy: TypeAlias = Literal["open", "closed"] | FeatureAccess | Mapping[str, Any]
"""What a feature's check answers when ChatarminOS cannot be reached and nothing is cached:
``"open"`` (enabled, can use, unlimited), ``"closed"`` (not enabled), or a fixed value — a
:class:`~chatarmin_os.FeatureAccess` or a dict of its fields (the fields you leave out are
those of ``"closed"``)."""

Key: TypeAlias = tuple[str, ...]

DEFAULT_TTL = 5.0
DEFAULT_JITTER = 0.1
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_STALE = 600.0
DEFAULT_MARGIN = 0.05
DEFAULT_LOCAL_TTL = 1.0

OUTAGE_FIRST_RETRY = 1.0
"""Seconds after an outage is noticed before a background request tries the server again."""
OUTAGE_MAX_RETRY = 15.0
"""The longest wait between two such tries (the wait doubles from the first)."""

REDIS_TIMEOUT = 0.5
"""Seconds a Redis command (or connecting) may take before Redis counts as unreachable."""
REDIS_FIRST_BACKOFF = 0.5
REDIS_MAX_BACKOFF = 30.0
REDIS_SCHEMES = ("redis", "rediss", "unix")

_OPEN = {
    "is_enabled": True,
    "can_use": True,
    "has_quantity": False,
    "current_usage": 0,
    "quantity_limit": None,
    "included_quantity": None,
    "remaining": None,
}
_CLOSED = {**_OPEN, "is_enabled": False, "can_use": False}


def _positive(name: str, value: object, *, zero: bool = False, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"cache: {name} must be a number, got {type(value).__name__}")
    low_ok = value >= 0 if zero else value > 0
    if not (low_ok and math.isfinite(value)) or (upper is not None and value >= upper):
        bound = f" and below {upper:g}" if upper is not None else ""
        raise ConfigurationError(
            f"cache: {name} must be {'at least 0' if zero else 'above 0'}{bound}, got {value!r}"
        )
    return float(value)


def _fallback_value(feature: str, policy: object) -> FeatureAccess:
    """A fallback policy as the :class:`FeatureAccess` it answers (checked once, up front)."""
    name = f"cache: fallback[{feature!r}]"
    if policy == "open":
        fields: Mapping[str, Any] = _OPEN
    elif policy == "closed":
        fields = _CLOSED
    elif isinstance(policy, FeatureAccess):
        return policy.model_copy()
    elif isinstance(policy, Mapping):
        fields = {**_CLOSED, **policy}
    else:
        raise ConfigurationError(
            f"{name} must be 'open', 'closed', a FeatureAccess or a dict of its fields, "
            f"got {type(policy).__name__}"
        )
    import pydantic

    try:
        return FeatureAccess.model_validate({"feature_code": feature, **fields})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"{name}: {where}: {first['msg']}") from None


def redacted_url(url: str) -> str:
    """A Redis URL for messages and reprs: scheme, host and port, never a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not shown)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class CacheOptions:
    """How the entitlement cache behaves (``cache=CacheOptions(...)``; ``cache=True`` is all
    defaults). Every value is checked when the client is made (``ConfigurationError``).

    Attributes:
        ttl: seconds an answer is served from the cache after it was fetched (default 5).
        jitter: each entry's TTL is spread by up to ± this fraction (default 0.1 = ±10 %), so
            entries fetched together do not expire together.
        max_entries: entries kept in this process (default 10,000); the least recently used
            goes first.
        max_stale: seconds after it was fetched that an entry may still answer, as
            ``provenance="stale"``, while ChatarminOS cannot be reached (default 600; 0: never).
        margin: a check whose cached ``remaining`` is above 0 and at most ``ceil(margin ×
            quantity_limit)`` goes to the server (default 0.05 = the last 5 % of the limit).
        fallback: what a check answers when ChatarminOS cannot be reached and nothing usable
            is cached: ``"open"`` or ``"closed"`` for every feature, or a dict of feature code
            (``"*"`` for any other feature) to ``"open"``, ``"closed"`` or a fixed
            :class:`~chatarmin_os.FeatureAccess` (or a dict of its fields). Features without a
            policy raise the error, as without a cache. Default: none.
        redis_url: share entries between processes and hosts through Redis
            (``redis://host:6379/0``, ``rediss://``, ``unix://``); needs
            ``pip install "chatarmin-os[redis]"``. Default: in-process only.
        local_ttl: with Redis, seconds the in-process copy of an entry answers before Redis
            is read again (default 1; 0 reads Redis every time).
        clock: a function returning seconds on a monotonic clock (default ``time.monotonic``);
            inject one in tests to move time by hand.
    """

    ttl: float = DEFAULT_TTL
    jitter: float = DEFAULT_JITTER
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_stale: float = DEFAULT_MAX_STALE
    margin: float = DEFAULT_MARGIN
    fallback: Literal["open", "closed"] | Mapping[str, FallbackPolicy] | None = None
    redis_url: str | None = None
    local_ttl: float = DEFAULT_LOCAL_TTL
    clock: Callable[[], float] | None = field(default=None, compare=False)
    _fallbacks: dict[str, FeatureAccess] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        _positive("ttl", self.ttl)
        _positive("jitter", self.jitter, zero=True, upper=1.0)
        _positive("max_stale", self.max_stale, zero=True)
        _positive("margin", self.margin, zero=True, upper=1.0)
        _positive("local_ttl", self.local_ttl, zero=True)
        if (
            isinstance(self.max_entries, bool)
            or not isinstance(self.max_entries, int)
            or self.max_entries < 1
        ):
            raise ConfigurationError(
                f"cache: max_entries must be an int of at least 1, got {self.max_entries!r}"
            )
        if self.clock is not None and not callable(self.clock):
            raise ConfigurationError("cache: clock must be a function returning seconds")
        if self.redis_url is not None:
            if not isinstance(self.redis_url, str):
                raise ConfigurationError(
                    f"cache: redis_url must be a string, got {type(self.redis_url).__name__}"
                )
            scheme = self.redis_url.partition("://")[0].lower()
            if scheme not in REDIS_SCHEMES:
                raise ConfigurationError(
                    "cache: redis_url must start with redis://, rediss:// or unix://, "
                    f"got {redacted_url(self.redis_url)}"
                )
        policies: Mapping[str, object]
        if self.fallback is None:
            policies = {}
        elif isinstance(self.fallback, str):
            policies = {"*": self.fallback}
        elif isinstance(self.fallback, Mapping):
            policies = self.fallback
        else:
            raise ConfigurationError(
                "cache: fallback must be 'open', 'closed' or a dict of feature code to policy, "
                f"got {type(self.fallback).__name__}"
            )
        resolved: dict[str, FeatureAccess] = {}
        for feature, policy in policies.items():
            if not isinstance(feature, str) or not feature.strip():
                raise ConfigurationError(
                    "cache: fallback keys must be feature codes (or '*'), "
                    f"got {type(feature).__name__}"
                )
            resolved[feature] = _fallback_value(feature, policy)
        object.__setattr__(self, "_fallbacks", resolved)

    def __repr__(self) -> str:
        redis = None if self.redis_url is None else redacted_url(self.redis_url)
        return (
            f"CacheOptions(ttl={self.ttl!r}, jitter={self.jitter!r}, "
            f"max_entries={self.max_entries!r}, max_stale={self.max_stale!r}, "
            f"margin={self.margin!r}, fallback={sorted(self._fallbacks)!r}, "
            f"redis_url={redis!r}, local_ttl={self.local_ttl!r})"
        )

    @classmethod
    def resolve(cls, cache: object) -> CacheOptions | None:
        """The options of a client's ``cache=`` argument (``None`` / ``False``: no cache)."""
        if cache is None or cache is False:
            return None
        if cache is True:
            return cls()
        if isinstance(cache, CacheOptions):
            return cache
        raise ConfigurationError(
            f"cache must be None, True or a CacheOptions, got {type(cache).__name__}"
        )

    def fallback_for(self, feature_code: str) -> FeatureAccess | None:
        """The fallback answer for a feature (``provenance="fallback"``), or ``None``."""
        policy = self._fallbacks.get(feature_code) or self._fallbacks.get("*")
        if policy is None:
            return None
        answer = policy.model_copy(update={"feature_code": feature_code})
        answer.__pydantic_private__["_provenance"] = "fallback"  # type: ignore[index]
        return answer


@dataclass(frozen=True)
class CacheStats:
    """Counters of one client's entitlement cache since it was made (or since a fork).

    ``hits`` fresh answers from this process; ``misses`` answers that had to be loaded (from
    Redis or the server); ``stale`` and ``fallback`` answers given during an outage;
    ``refreshes`` entries loaded by the background request during an outage; ``coalesced``
    calls that waited for another caller's request for the same key instead of sending
    their own; ``usage_updates`` usage results applied to cached entries; ``invalidations``
    writes and messages that dropped entries; ``evictions`` entries dropped for room;
    ``redis_hits`` / ``redis_misses`` loads answered / not answered by Redis;
    ``redis_errors`` Redis commands that failed (each is also logged at DEBUG); ``entries``
    entries held now.
    """

    hits: int = 0
    misses: int = 0
    stale: int = 0
    fallback: int = 0
    refreshes: int = 0
    coalesced: int = 0
    usage_updates: int = 0
    invalidations: int = 0
    evictions: int = 0
    redis_hits: int = 0
    redis_misses: int = 0
    redis_errors: int = 0
    entries: int = 0

    def __getitem__(self, name: str) -> int:
        """``stats["hits"]`` is ``stats.hits``."""
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        value: int = getattr(self, name)
        return value

    def as_dict(self) -> dict[str, int]:
        """Every counter by name (for a metrics exporter)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


class Counters:
    """The mutable counters behind :class:`CacheStats` (plain ints, one bytecode to bump)."""

    __slots__ = (
        "coalesced",
        "evictions",
        "fallback",
        "hits",
        "invalidations",
        "misses",
        "redis_errors",
        "redis_hits",
        "redis_misses",
        "refreshes",
        "stale",
        "usage_updates",
    )

    def __init__(self) -> None:
        self.hits = self.misses = self.stale = self.fallback = self.refreshes = 0
        self.coalesced = self.usage_updates = self.invalidations = self.evictions = 0
        self.redis_hits = self.redis_misses = self.redis_errors = 0

    def snapshot(self, entries: int) -> CacheStats:
        return CacheStats(**{name: getattr(self, name) for name in self.__slots__}, entries=entries)


def is_outage(error: BaseException) -> bool:
    """Whether a failed call means ChatarminOS cannot answer (no answer, or a 5xx).

    Authentication, input and other 4xx errors, and answers of the wrong shape, are not: they
    are raised, never answered from the cache.
    """
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIStatusError) and error.status_code >= 500


def describe(key: Key) -> str:
    """A key for log lines: ``check company/feature``, ``org org_1``, ..."""
    kind = {"c": "check", "l": "list_access", "a": "org_access", "o": "org", "oc": "org_check"}
    return f"{kind.get(key[0], key[0])} {'/'.join(key[1:])}"


# -- values --------------------------------------------------------------------------------


def with_provenance(value: Any, provenance: Provenance) -> Any:
    """A copy of a cached value whose access answers say ``provenance``.

    Feature accesses (frozen) are copied with the new provenance; a list is copied item by
    item; an ``OrgFeatureAccess`` with its features; a ``Company`` is copied (it is not
    frozen: the caller may change theirs); ``None`` stays ``None``.
    """
    if isinstance(value, FeatureAccessBase):
        if value._provenance == provenance:
            return value
        copy = value.model_copy()
        copy.__pydantic_private__["_provenance"] = provenance  # type: ignore[index]
        return copy
    if isinstance(value, list):
        return [with_provenance(item, provenance) for item in value]
    if isinstance(value, OrgFeatureAccess):
        copy_org = value.model_copy(
            update={"features": [with_provenance(f, provenance) for f in value.features]}
        )
        copy_org.__pydantic_private__["_provenance"] = provenance  # type: ignore[index]
        return copy_org
    if isinstance(value, Company):
        return value.model_copy()
    return value


def answer(value: Any) -> Any:
    """What a fresh hit returns: the frozen access itself, or a copy of anything mutable."""
    if isinstance(value, FeatureAccessBase) or value is None:
        return value
    if isinstance(value, list):
        return list(value)
    if isinstance(value, OrgFeatureAccess):
        copy = value.model_copy(update={"features": list(value.features)})
        copy.__pydantic_private__["_provenance"] = "cache"  # type: ignore[index]
        return copy
    if isinstance(value, Company):
        return value.model_copy()
    return value


def company_of(key: Key, value: Any) -> str | None:
    """The company an entry belongs to (for invalidation and usage updates)."""
    kind = key[0]
    if kind in ("c", "l"):
        return key[1]
    if isinstance(value, OrgFeatureAccess):
        return value.company_id
    if isinstance(value, Company):
        return value.id
    return None


def margin_units(margin: float, quantity_limit: int) -> int:
    """How close to its limit an access must be for checks to go to the server."""
    return math.ceil(margin * quantity_limit) if margin > 0 else 0


def near_limit(value: Any, margin: float) -> bool:
    """Whether a cached value must not answer as fresh (the margin rule)."""
    if isinstance(value, FeatureAccessBase):
        return _near(value, margin)
    if isinstance(value, list):
        return any(isinstance(f, FeatureAccessBase) and _near(f, margin) for f in value)
    if isinstance(value, OrgFeatureAccess):
        return any(_near(f, margin) for f in value.features)
    return False


def _near(access: FeatureAccessBase, margin: float) -> bool:
    remaining, limit = access.remaining, access.quantity_limit
    if remaining is None or limit is None or remaining <= 0:
        return False
    return remaining <= margin_units(margin, limit)


def _usage_applies(access: FeatureAccessBase, usage: UsageResult) -> bool | None:
    """True: apply; False: older than what is cached (expire instead); None: other feature."""
    if access.feature_code != usage.feature_code:
        return None
    return not usage.duplicate and usage.current_usage >= access.current_usage


def _with_usage(access: Any, usage: UsageResult) -> Any:
    limit = usage.quantity_limit
    copy = access.model_copy(
        update={
            "current_usage": usage.current_usage,
            "quantity_limit": limit,
            "included_quantity": usage.included_quantity,
            "remaining": usage.remaining,
            "can_use": access.is_enabled and (limit is None or usage.current_usage < limit),
        }
    )
    copy.__pydantic_private__["_provenance"] = access._provenance
    return copy


def apply_usage(value: Any, usage: UsageResult) -> tuple[Any, bool]:
    """``value`` with ``usage`` applied, and whether it may still answer as fresh.

    Returns ``(value, True)`` untouched when ``usage`` is for another feature; ``(value,
    False)`` when ``usage`` is older than what is cached or a duplicate's first answer (the
    entry then expires: the next check asks the server).
    """
    if isinstance(value, FeatureAccessBase):
        verdict = _usage_applies(value, usage)
        if verdict is None:
            return value, True
        return (_with_usage(value, usage), True) if verdict else (value, False)
    if isinstance(value, list):
        items, fresh = [], True
        for item in value:
            new, ok = apply_usage(item, usage)
            items.append(new)
            fresh = fresh and ok
        return items, fresh
    if isinstance(value, OrgFeatureAccess):
        features, fresh = apply_usage(value.features, usage)
        copy = value.model_copy(update={"features": features})
        copy.__pydantic_private__["_provenance"] = value._provenance  # type: ignore[index]
        return copy, fresh
    return value, True


# -- the in-process level ------------------------------------------------------------------


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

    def __init__(self, max_entries: int, counters: Counters, margin: float) -> None:
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


# -- outages -------------------------------------------------------------------------------


class Outage:
    """Whether ChatarminOS is failing for this cache, and when to try it again."""

    __slots__ = ("failures", "probe", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.probe: Any = None  # the background request's handle (``.alive()``)

    @property
    def probing(self) -> bool:
        """Whether a background request is running (here: a thread of this process, or a
        task of the running event loop; one lost with its loop does not count)."""
        return self.probe is not None and bool(self.probe.alive())

    @property
    def active(self) -> bool:
        return self.failures > 0

    def failed(self, now: float) -> None:
        delay = min(OUTAGE_FIRST_RETRY * 2 ** min(self.failures, 16), OUTAGE_MAX_RETRY)
        self.failures += 1
        self.retry_at = now + delay

    def recovered(self) -> bool:
        """End the outage; whether there was one."""
        was = self.failures > 0
        self.failures = 0
        self.retry_at = 0.0
        return was


def ttl_with_jitter(ttl: float, jitter: float) -> float:
    return ttl * (1.0 + jitter * (2.0 * random.random() - 1.0)) if jitter else ttl


# -- Redis layout --------------------------------------------------------------------------
#
# Everything of one product lives under  chatarmin_os:cache:1:<product>  ("1" is the
# format: a new SDK that changes it reads and writes other keys). Two kinds of hashes:
#
#   <P>:c:<company_id>   chk:<feature>  an access (features.check)
#                        use:<feature>  the latest usage result ("<usage>|<json>")
#                        lst            features.list_access
#                        acc:<org>      features.get_access_by_external_org_id
#                        _g             the hash's generation
#   <P>:o:<org_id>       map            companies.get_by_product_link (a company or null)
#                        _g
#
# An entry is "<unix time fetched>|<the answer as JSON, wire names>". A hash expires
# (PEXPIRE) max(ttl, max_stale) after its last write. Invalidating a company or an org is
# one script: delete the hash and bump its generation; a load writes its answer only when
# the generation is the one it read before asking the server, so an answer that raced an
# invalidation is never stored. Changes are published on <P>:events for the other processes.

REDIS_PREFIX = "chatarmin_os:cache:1"

SET_IF_GENERATION = """
local g = redis.call('HGET', KEYS[1], '_g') or '0'
if g ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

INVALIDATE = """
for i, key in ipairs(KEYS) do
  local g = tonumber(redis.call('HGET', key, '_g') or '0') + 1
  redis.call('DEL', key)
  redis.call('HSET', key, '_g', g)
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""

# A later usage result replaces the overlay; an earlier one (a lower usage) means the cached
# figures cannot be trusted: the overlay, the access and the lists go, and loads ask again.
RECORD_USAGE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local u = tonumber(string.match(old, '^(%-?%d+)|'))
  if u and tonumber(ARGV[3]) < u then
    redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2], 'lst')
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisKeys:
    """Where each cache key lives in Redis, for one product."""

    __slots__ = ("base", "channel")

    def __init__(self, product: str) -> None:
        self.base = f"{REDIS_PREFIX}:{product}"
        self.channel = f"{self.base}:events"

    def company(self, company_id: str) -> str:
        return f"{self.base}:c:{company_id}"

    def org(self, org: str) -> str:
        return f"{self.base}:o:{org}"

    def orgs_pattern(self) -> str:
        return f"{_glob_escape(self.base)}:o:*"

    def all_pattern(self) -> str:
        return f"{_glob_escape(self.base)}:*"

    def location(self, key: Key, company: str | None) -> tuple[str, str] | None:
        """The (hash, field) of a cache key; ``None`` when it has no place in Redis yet
        (an org's access before its company is known)."""
        kind = key[0]
        if kind == "c":
            return self.company(key[1]), f"chk:{key[2]}"
        if kind == "l":
            return self.company(key[1]), "lst"
        if kind == "o":
            return self.org(key[1]), "map"
        if kind == "a" and company is not None:
            return self.company(company), f"acc:{key[1]}"
        return None


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def encode_entry(value: Any, fetched_wall: float) -> str:
    """A cached answer as stored in Redis: ``"<unix time fetched>|<the answer as JSON>"``."""
    return f"{fetched_wall!r}|{json.dumps(_dump(value), separators=(',', ':'))}"


def _dump(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value.model_dump(mode="json", by_alias=True)


_list_of_details: Any = None


def decode_entry(kind: str, raw: bytes) -> tuple[Any, float]:
    """A Redis entry as (value with provenance ``"cache"``, unix time it was fetched).

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) for an entry this SDK
    cannot read.
    """
    global _list_of_details
    head, _, body = raw.partition(b"|")
    fetched = float(head)
    value: Any
    if kind == "c":
        value = FeatureAccess.model_validate_json(body)
    elif kind == "l":
        if _list_of_details is None:
            from pydantic import TypeAdapter

            _list_of_details = TypeAdapter(list[FeatureAccessDetail])
        value = _list_of_details.validate_json(body)
    elif kind == "a":
        value = OrgFeatureAccess.model_validate_json(body)
    elif kind == "o":
        value = None if body == b"null" else Company.model_validate_json(body)
    else:  # pragma: no cover - every kind is listed above
        raise ValueError(f"unknown cache kind {kind!r}")
    _mark_cached(value)
    return value, fetched


def _mark_cached(value: Any) -> None:
    """Say ``provenance="cache"`` on a value just decoded (nobody else holds it: no copy)."""
    if isinstance(value, (FeatureAccessBase, OrgFeatureAccess)):
        value.__pydantic_private__["_provenance"] = "cache"  # type: ignore[index]
        if isinstance(value, OrgFeatureAccess):
            for feature in value.features:
                _mark_cached(feature)
    elif isinstance(value, list):
        for item in value:
            _mark_cached(item)


def encode_usage(usage: UsageResult, wall: float) -> str:
    """A usage overlay: ``"<current_usage>|<json>"`` (Lua compares the number)."""
    data = {
        "t": wall,
        "f": usage.feature_code,
        "u": usage.current_usage,
        "q": usage.quantity_limit,
        "i": usage.included_quantity,
        "r": usage.remaining,
    }
    return f"{usage.current_usage}|{json.dumps(data, separators=(',', ':'))}"


def decode_usage(raw: bytes | str) -> tuple[UsageResult, float]:
    """An overlay as a ``UsageResult`` (enough of one to apply) and the unix time written."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    doc = json.loads(text.partition("|")[2])
    usage = UsageResult.model_construct(
        feature_code=doc["f"],
        current_usage=int(doc["u"]),
        quantity_limit=doc["q"],
        included_quantity=doc["i"],
        remaining=doc["r"],
        billable_quantity=0,
        is_at_limit=False,
        duplicate=False,
    )
    return usage, float(doc["t"])


def apply_overlays(value: Any, fetched_wall: float, overlays: Iterable[bytes | str | None]) -> Any:
    """``value`` with every usage overlay written after it was fetched applied."""
    for raw in overlays:
        if raw is None:
            continue
        try:
            usage, written = decode_usage(raw)
        except (ValueError, KeyError, TypeError):
            continue
        if written >= fetched_wall:
            new, fresh = apply_usage(value, usage)
            if fresh:
                value = new
    return value


def encode_message(src: str, ops: list[list[str]]) -> str:
    """A change published to the other processes: who sent it and what to drop."""
    return json.dumps({"src": src, "ops": ops}, separators=(",", ":"))


def decode_message(raw: bytes | str) -> tuple[str, list[list[str]]]:
    doc = json.loads(raw)
    ops = doc.get("ops")
    if not isinstance(ops, list):
        raise ValueError("no ops")
    return str(doc.get("src", "")), [op for op in ops if isinstance(op, list) and op]


def check_redis_url(url: str) -> None:
    """Parse ``url`` as the ``redis`` package will (``ConfigurationError`` when it cannot)."""
    try:
        _import_redis("redis.connection").parse_url(url)
    except ValueError as error:
        raise ConfigurationError(
            f"cache: redis_url {redacted_url(url)} cannot be used: {str(error)[:100]}"
        ) from None


def load_redis() -> Any:
    """The ``redis`` package (the blocking client)."""
    return _import_redis("redis")


def load_async_redis() -> Any:
    """``redis.asyncio`` (the asyncio client)."""
    return _import_redis("redis.asyncio")


def _import_redis(name: str) -> Any:
    from importlib import import_module

    try:
        return import_module(name)
    except ImportError:
        raise ConfigurationError(
            'cache: redis_url needs the redis package: pip install "chatarmin-os[redis]"'
        ) from None


_BLOCKING = object()


def redis_loop() -> object | None:
    """The blocking client's Redis works in any thread: always the same marker."""
    return _BLOCKING


def async_redis_loop() -> object | None:
    """The running asyncio loop (``redis.asyncio`` needs one), or ``None`` (e.g. under trio)."""
    import sys

    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    loop: object | None = asyncio._get_running_loop()
    return loop


def wall_clock() -> float:
    """Seconds since the epoch: the time entries carry between processes."""
    return time.time()
