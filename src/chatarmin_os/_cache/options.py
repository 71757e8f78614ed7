"""The cache's options (:class:`CacheOptions`, checked up front) and counters (:class:`CacheStats`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit

from .._exceptions import ConfigurationError
from .._models import FeatureAccess

__all__ = ["CacheCounters", "CacheOptions", "CacheStats", "FallbackPolicy", "redacted_url"]

FallbackPolicy: TypeAlias = Literal["open", "closed"] | FeatureAccess | Mapping[str, Any]
"""What a feature's check answers when ChatarminOS cannot be reached and nothing is cached:
``"open"`` (enabled, can use, unlimited), ``"closed"`` (not enabled), or a fixed value — a
:class:`~chatarmin_os.FeatureAccess` or a dict of its fields (the fields you leave out are
those of ``"closed"``)."""

DEFAULT_TTL = 5.0
DEFAULT_JITTER = 0.1
DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_STALE = 600.0
DEFAULT_MARGIN = 0.05
DEFAULT_LOCAL_TTL = 1.0

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


class CacheCounters:
    """The mutable counters behind :class:`CacheStats` (plain ints, one bytecode to bump).

    One object for a cache's whole life: its levels are handed it when they are made."""

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
        self.reset()

    def reset(self) -> None:
        """Every counter back to 0 (a forked child starts counting anew)."""
        self.hits = self.misses = self.stale = self.fallback = self.refreshes = 0
        self.coalesced = self.usage_updates = self.invalidations = self.evictions = 0
        self.redis_hits = self.redis_misses = self.redis_errors = 0

    def snapshot(self, entries: int) -> CacheStats:
        """The counters now, with the number of entries held."""
        return CacheStats(**{name: getattr(self, name) for name in self.__slots__}, entries=entries)
