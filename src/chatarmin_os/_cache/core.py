"""What both twins of the entitlement cache share: everything that never waits.

:class:`CacheCore` holds one product's cache in this process: the hit path (a dict lookup and
a clock read), the bookkeeping of misses, loads and invalidations, the answers during an
outage, the fork reset. The twins (``_async/_cache.py`` and its generated ``_sync/``) add only
what waits: loads with single flight, Redis I/O, background refreshes. :class:`CacheGroupCore`
is the group of a client's caches (one per product).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar, Final, Generic, TypeVar, cast

from .._base import ClientConfig, product_key
from .._exceptions import ChatarminOSError
from .._fork import register as reset_after_fork
from .._logs import logger
from .._models import UsageResult
from .._procedure_cache import CACHE_RULES, MAPPING_PATH, MISS, Drops, Fills
from .._telemetry import record_cached
from .memory import Entry, Level1
from .options import CacheCounters, CacheOptions, CacheStats
from .outage import Outage
from .redis_layout import RedisKeys, wall_clock
from .redis_level import RedisLevelCore
from .rules import (
    Key,
    answer,
    company_of,
    describe_key,
    is_outage,
    near_limit,
    ttl_with_jitter,
    with_provenance,
)

__all__ = ["MAPPING_RULE", "CacheCore", "CacheGroupCore", "Flight"]

_DEBUG = logging.DEBUG
_C = TypeVar("_C", bound="CacheCore")

MAPPING_RULE: Final = cast(Fills, CACHE_RULES[MAPPING_PATH])
"""The rule of ``companies.getByProductLink`` (an org's company, for org checks and writes)."""


class Flight:
    """One load in progress; callers that miss the same key wait for its ``done`` event."""

    __slots__ = ("done", "error", "value")

    def __init__(self, done: Any) -> None:
        self.done = done
        self.value: Any = None
        self.error: BaseException | None = None


class CacheCore:
    """The entitlement cache of one product (API key and base URL) in this process.

    ``client.cache`` is the twin made of this (``None`` without ``cache=``). Read its counters
    with :meth:`stats`. Thread-safe and task-safe; a forked child starts with an empty cache
    and without its parent's Redis connections and listener.
    """

    _redis_level: ClassVar[type[RedisLevelCore]]
    """The twin's Redis level (made when ``redis_url`` is set)."""
    _refresh: Callable[[Key, Callable[[], Any]], Any]
    """The twin's background request of an outage: ``load`` once, then :meth:`_refreshed`."""

    def __init__(self, options: CacheOptions, product: str, background: Any) -> None:
        self._options = options
        self._product = product
        self._clock: Callable[[], float] = options.clock or time.monotonic
        self._background = background
        self._counters = CacheCounters()
        self._start_fresh()
        self._redis: RedisLevelCore | None = None
        if options.redis_url is not None:
            self._redis = self._redis_level(
                options.redis_url,
                RedisKeys(product),
                options,
                clock=self._clock,
                counters=self._counters,
                listener=self._on_message,
                missed=self._missed_messages,
                background=background,
            )
        reset_after_fork(self)

    @property
    def redis(self) -> RedisLevelCore | None:
        """The shared level in Redis (``None`` without ``redis_url``): its ``connection()``
        serves others that keep state beside the cache (the quota ledger)."""
        return self._redis

    def _start_fresh(self) -> None:
        self._counters.reset()
        self._l1 = Level1(self._options.max_entries, self._counters, self._options.margin)
        self._entries = self._l1.entries  # the hot path reads it directly
        self._flights: dict[Key, Flight] = {}
        self._outage = Outage()

    def _after_fork_in_child(self) -> None:
        self._start_fresh()
        if self._redis is not None:
            self._redis._after_fork_in_child()

    def __repr__(self) -> str:
        redis = "" if self._options.redis_url is None else ", redis"
        return f"<{type(self).__name__} product={self._product[:8]}…{redis}>"

    @property
    def options(self) -> CacheOptions:
        """The options this cache was made with."""
        return self._options

    def stats(self) -> CacheStats:
        """The counters since the client was made (or since a fork), and the entries held."""
        return self._counters.snapshot(len(self._entries))

    # -- the hit path: no I/O, no waiting ---------------------------------------------------

    def hit(self, rule: Fills, payload: Mapping[str, Any]) -> Any:
        """A fresh cached answer to a query ``rule`` covers, or :data:`MISS`.

        A check's answer is the cached frozen access itself; anything mutable is a copy.
        Nothing is checked here: only inputs that were checked and answered have entries.
        """
        if rule.letter == "c":  # the hot path, inlined: a check
            fields = rule.fields
            company, feature = payload[fields[0]], payload[fields[1]]
            if type(company) is str and type(feature) is str:
                check = ("c", company, feature)
                entry = self._entries.get(check)
                if entry is not None and entry.fresh_until > self._clock():
                    try:  # noqa: SIM105 - a context manager costs more
                        self._entries.move_to_end(check)
                    except KeyError:  # dropped by another thread meanwhile
                        pass
                    self._counters.hits += 1
                    if logger.isEnabledFor(_DEBUG):
                        logger.debug("cache: hit %s", describe_key(check))
                    record_cached("c", "cache")
                    return entry.value
            return MISS
        key = rule.key_of(payload)
        if key is None:
            return MISS
        if key[0] == "oc":
            return self._hit_org_check(key)
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > self._clock():
            self._hit(key)
            return answer(entry.value)
        return MISS

    def _hit_org_check(self, key: Key) -> Any:
        mapping = self._entries.get(("o", key[1]))
        now = self._clock()
        if mapping is not None and mapping.fresh_until > now and mapping.value is not None:
            check = ("c", mapping.value.id, key[2])
            entry = self._entries.get(check)
            if entry is not None and entry.fresh_until > now:
                self._hit(check)
                return entry.value
        return MISS

    def _hit(self, key: Key) -> None:
        try:  # noqa: SIM105 - the hot path: a context manager costs more
            self._entries.move_to_end(key)
        except KeyError:  # dropped by another thread meanwhile
            pass
        self._counters.hits += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: hit %s", describe_key(key))
        record_cached(key[0], "cache")

    def _fresh_entry(self, key: Key) -> Entry | None:
        entry = self._entries.get(key)
        return entry if entry is not None and entry.fresh_until > self._clock() else None

    # -- misses and loads -------------------------------------------------------------------

    def _missed(self, key: Key, feature: str | None) -> Any:
        """Count a miss of ``key``; during an outage, its stale or fallback answer (else
        ``None``). ``feature``: the feature whose fallback policy may answer (checks)."""
        self._counters.misses += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: miss %s", describe_key(key))
        return self._outage_answer(key, feature) if self._outage.active else None

    def _company_hint(self, key: Key) -> str | None:
        """The company of an org's access, from the org's mapping (for its Redis place)."""
        if key[0] != "a":
            return None
        mapping = self._entries.get(("o", key[1]))
        return mapping.value.id if mapping is not None and mapping.value is not None else None

    def _redis_answer(self, key: Key, found: tuple[bytes | None, object], started: int) -> Any:
        """What Redis held for ``key`` (read by a load begun at ``started``): kept here, and
        the answer when it is fresh, else :data:`MISS` (the server is asked)."""
        raw, source = found
        held = self._entries.get(key)
        if (  # the bytes we decoded before: no decoding
            raw is not None
            and held is not None
            and source == held.raw
            and self._l1.refresh(key, held, self._redis_fresh_until(held), started)
        ):
            self._counters.redis_hits += 1
            return held.value
        assert self._redis is not None
        decoded = self._redis.decode(key, raw, source)
        if decoded is not None:
            value, fetched_wall = decoded
            age = max(0.0, wall_clock() - fetched_wall)
            if self._keep_from_redis(key, value, age, started, source) and age < self._options.ttl:
                self._counters.redis_hits += 1
                return answer(value)
        self._counters.redis_misses += 1
        return MISS

    def _redis_fresh_until(self, entry: Entry) -> float:
        """Until when an entry Redis still holds unchanged answers here."""
        return min(entry.fetched_at + self._options.ttl, self._clock() + self._options.local_ttl)

    def _keep_from_redis(self, key: Key, value: Any, age: float, started: int, raw: object) -> bool:
        """Keep an entry read from Redis; whether it may answer as fresh."""
        now = self._clock()
        fetched_at = now - age
        fresh_until = min(fetched_at + self._options.ttl, now + self._options.local_ttl)
        near = near_limit(value, self._options.margin)
        entry = Entry(value, fetched_at, fresh_until, company_of(key, value), near=near, raw=raw)
        self._l1.put(key, entry, started)
        return not near

    def _keep(self, key: Key, value: Any, started: int) -> tuple[Any, str | None]:
        """Keep a live answer here (as ``provenance="cache"``); the value and company to
        write to Redis."""
        cached = with_provenance(value, "cache")
        now = self._clock()
        options = self._options
        fresh_until = now + ttl_with_jitter(options.ttl, options.jitter)
        redis = self._redis
        if redis is not None and redis.available():
            fresh_until = min(fresh_until, now + options.local_ttl)
        company = company_of(key, cached)
        near = near_limit(cached, options.margin)
        self._l1.put(key, Entry(cached, now, fresh_until, company, near=near), started)
        return cached, company

    # -- outages ----------------------------------------------------------------------------

    def _server_answered(self) -> None:
        if self._outage.recovered():
            logger.info("cache: ChatarminOS answers again")

    def _after_failure(self, error: ChatarminOSError, key: Key, feature: str | None) -> Any:
        """A load of ``key`` failed: during an outage, the stale or fallback answer (else
        ``None``: the error is raised)."""
        if not is_outage(error):
            return None
        first = not self._outage.active
        self._outage.failed(self._clock())
        answer = self._outage_answer(key, feature)
        if first:
            logger.warning(
                "cache: ChatarminOS cannot be reached (%s); %s",
                error,
                "nothing cached to answer with" if answer is None else "answering from the cache",
            )
        return answer

    def _outage_answer(self, key: Key, feature: str | None) -> Any:
        """A stale entry young enough, else the feature's fallback, else ``None``."""
        if key[0] == "oc":  # an org's check: the check of its company, when known
            mapping = self._entries.get(("o", key[1]))
            if (
                mapping is not None
                and mapping.value is not None
                and self._clock() - mapping.fetched_at < self._options.max_stale
            ):
                stale = self._stale(("c", mapping.value.id, key[2]))
                if stale is not None:
                    return stale
        stale = self._stale(key)
        if stale is not None:
            return stale
        if feature is not None:
            fallback = self._options.fallback_for(feature)
            if fallback is not None:
                self._counters.fallback += 1
                logger.debug("cache: fallback for %s", feature)
                record_cached(key[0], "fallback")
                return fallback
        return None

    def _stale(self, key: Key) -> Any:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry.fetched_at >= self._options.max_stale:
            return None
        self._counters.stale += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: stale %s", describe_key(key))
        record_cached(key[0], "stale")
        return with_provenance(entry.value, "stale")

    def _refresh_later(self, key: Key, load: Callable[[], Any]) -> bool:
        """During an outage: whether the caller may be answered without asking the server.

        Yes until the retry time; then one background ``load`` (the twin's ``_refresh``,
        which stores what it gets) tries the server (its success ends the outage) while
        callers keep getting stale or fallback answers. Where no background work can run
        (trio outside ``async with``), the caller asks the server itself.
        """
        outage = self._outage
        if self._clock() < outage.retry_at or outage.probing:
            return True
        try:
            outage.probe = self._background.start(
                partial(self._refresh, key, load), "chatarmin_os cache refresh"
            )
        except ChatarminOSError:
            return False
        return True

    def _refreshed(self, key: Key, error: ChatarminOSError | None) -> None:
        """The background request of an outage ended (``error``: how it failed)."""
        if error is None:
            self._counters.refreshes += 1
            logger.debug("cache: refreshed %s in the background", describe_key(key))
            return
        if is_outage(error):
            self._outage.failed(self._clock())
        logger.debug("cache: background refresh of %s failed: %s", describe_key(key), error)

    # -- invalidation and usage, here -------------------------------------------------------

    def _write_scope(
        self, rule: Drops, payload: Mapping[str, Any], result: Any
    ) -> tuple[str | None, str | None]:
        """The company and org a mutation changed (by its rule, input and answer)."""
        company = payload.get(rule.company) if rule.company is not None else None
        org = payload.get(rule.org) if rule.org is not None else None
        if rule.result_company is not None and result is not None:
            company = getattr(result, rule.result_company)
        return company, org

    def _drop_here(
        self,
        company_id: str | None,
        external_org_id: str | None,
        company_record: bool,
        all_orgs: bool,
    ) -> tuple[list[str], list[str], list[list[str]]] | None:
        """Drop what a write changed in this process; what to drop in Redis (companies,
        orgs, messages for the other processes), or ``None`` when nothing was named."""
        dropped = 0
        companies: list[str] = []
        orgs: list[str] = []
        ops: list[list[str]] = []
        if company_id is not None:
            if company_record:  # its mappings hold the company's name and domain
                orgs += [key[1] for key in self._l1.company_keys(company_id) if key[0] == "o"]
            dropped += self._l1.drop_company(company_id, mappings=company_record)
            companies.append(company_id)
            ops.append(["m" if company_record else "c", company_id])
        if external_org_id is not None:
            dropped += self._l1.drop_org(external_org_id)
            orgs.append(external_org_id)
            ops.append(["o", external_org_id])
        if all_orgs:
            dropped += self._l1.drop_orgs()
            ops.append(["orgs"])
        if not ops:
            return None
        self._invalidated(dropped, " ".join("/".join(op) for op in ops))
        return companies, orgs, ops

    def _invalidated(self, dropped: int, what: str) -> None:
        self._counters.invalidations += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: dropped %d entries (%s)", dropped, what)

    def _usage_here(self, company_id: str, usage: UsageResult) -> bool:
        """Apply a usage result here; whether Redis should hear of it (not a duplicate's)."""
        changed = self._l1.apply_usage(company_id, usage)
        self._counters.usage_updates += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug(
                "cache: usage of %s for %s (%d) updated %d entries",
                usage.feature_code,
                company_id,
                usage.current_usage,
                changed,
            )
        return self._redis is not None and not usage.duplicate

    def _refused_here(self, company_id: str, feature_code: str) -> None:
        """Expire the company's entries for a feature whose usage was refused."""
        self._l1.expire(self._l1.feature_keys(company_id, feature_code))
        self._counters.invalidations += 1
        logger.debug("cache: usage of %s refused for %s: expired", feature_code, company_id)

    def _on_message(self, ops: list[list[str]]) -> None:
        """Another process changed something: drop our copies (the Redis level's listener)."""
        dropped = 0
        for op in ops:
            kind, args = op[0], op[1:]
            if kind in ("c", "m") and args:
                dropped += self._l1.drop_company(args[0], mappings=kind == "m")
            elif kind == "o" and args:
                dropped += self._l1.drop_org(args[0])
            elif kind == "u" and len(args) == 2:
                keys = self._l1.feature_keys(args[0], args[1])
                dropped += sum(self._l1.drop_key(key) for key in keys)
            elif kind == "orgs":
                dropped += self._l1.drop_orgs()
            elif kind == "all":
                dropped += self._l1.clear()
        self._counters.invalidations += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: another process changed %s: dropped %d entries", ops, dropped)

    def _missed_messages(self) -> None:
        """The Redis level listens again: messages may have been missed meanwhile."""
        self._l1.clear()
        logger.debug("cache: listening again; dropped every entry")


class CacheGroupCore(Generic[_C]):
    """The caches of one client and its ``with_options`` copies: one per product."""

    _cache_type: Callable[[CacheOptions, str, Any], _C]
    """The twin's cache class (set by the twin)."""

    def __init__(self, options: CacheOptions, background: Any) -> None:
        self.options = options
        self._background = background
        self._caches: dict[str, _C] = {}

    def for_config(self, config: ClientConfig) -> _C:
        """The cache of the product a client configuration talks to."""
        product = product_key(str(config.base_url), config.api_key)
        cache = self._caches.get(product)
        if cache is None:
            cache = self._caches.setdefault(
                product, self._cache_type(self.options, product, self._background)
            )
        return cache
