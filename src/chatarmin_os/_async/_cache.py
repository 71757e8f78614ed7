"""The entitlement cache of the async client: the parts that wait.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_cache.py``. The rules (keys,
TTL, margin, usage, outages, the Redis layout) are in :mod:`chatarmin_os._cache`; here:

* :class:`AsyncEntitlementCache`: one product's cache — the hit path (no I/O, no waiting),
  loads with single flight (concurrent misses for one key make one request), stale and
  fallback answers during an outage with a background refresh, invalidation after writes,
  usage updates;
* :class:`AsyncRedisLevel`: the shared level in Redis and the pub/sub listener that drops
  entries other processes changed; every failure is counted and logged, never raised;
* :class:`AsyncCacheGroup`: the caches of one client and its ``with_options`` copies (one per
  product: API key and base URL).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from .. import _fork
from .._base import ClientConfig, product_key
from .._cache import (
    INVALIDATE,
    RECORD_USAGE,
    REDIS_FIRST_BACKOFF,
    REDIS_MAX_BACKOFF,
    REDIS_TIMEOUT,
    SET_IF_GENERATION,
    CacheOptions,
    CacheStats,
    Counters,
    Entry,
    Key,
    Level1,
    Outage,
    RedisKeys,
    answer,
    apply_overlays,
    async_redis_loop,
    check_redis_url,
    company_of,
    decode_entry,
    decode_message,
    describe,
    encode_entry,
    encode_message,
    encode_usage,
    is_outage,
    load_async_redis,
    near_limit,
    redacted_url,
    ttl_with_jitter,
    wall_clock,
    with_provenance,
)
from .._concurrency import (
    AsyncBackground,
    AsyncEvent,
    AsyncFetch,
    arun_both,
    asleep,
    await_event,
    new_async_event,
)
from .._exceptions import ChatarminOSError
from .._logs import logger
from .._models import Company, FeatureAccess, FeatureAccessDetail, OrgFeatureAccess, UsageResult
from .._telemetry import record_cached

__all__ = ["AsyncCacheGroup", "AsyncEntitlementCache", "AsyncRedisLevel"]

_T = TypeVar("_T")

_DEBUG = logging.DEBUG
_LISTEN_POLL = 0.25  # seconds the listener waits for a message before looking at _closing
_CLOSE_WAIT = 1.0  # seconds closing waits for the listener to stop


class _Flight:
    """One load in progress; callers that miss the same key wait for it."""

    __slots__ = ("done", "error", "value")

    def __init__(self, done: AsyncEvent) -> None:
        self.done = done
        self.value: Any = None
        self.error: BaseException | None = None


class AsyncEntitlementCache:
    """The entitlement cache of one product (API key and base URL) in this process.

    ``client.cache`` is this object (``None`` without ``cache=``). Read its counters with
    :meth:`stats`; drop entries with :meth:`invalidate` (after changing entitlements some
    other way, e.g. from a webhook) or :meth:`clear`. :meth:`record_usage` is what
    ``billing.track_usage`` (and a usage buffer) calls with each answer.

    Thread-safe and task-safe; a forked child starts with an empty cache and without its
    parent's Redis connections and listener.
    """

    def __init__(self, options: CacheOptions, product: str, background: AsyncBackground) -> None:
        self._options = options
        self._product = product
        self._clock: Callable[[], float] = options.clock or time.monotonic
        self._background = background
        self._id = uuid.uuid4().hex  # this process's cache, in pub/sub messages
        self._start_fresh()
        self._redis: AsyncRedisLevel | None = None
        if options.redis_url is not None:
            self._redis = AsyncRedisLevel(
                options.redis_url, RedisKeys(product), self, background, options
            )
        _fork.register(self)

    def _start_fresh(self) -> None:
        self._counters = Counters()
        self._l1 = Level1(self._options.max_entries, self._counters, self._options.margin)
        self._entries = self._l1.entries  # the hot path reads it directly
        self._flights: dict[Key, _Flight] = {}
        self._outage = Outage()

    def _after_fork_in_child(self) -> None:
        self._id = uuid.uuid4().hex
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

    # -- public ----------------------------------------------------------------------------

    def stats(self) -> CacheStats:
        """The counters since the client was made (or since a fork), and the entries held."""
        return self._counters.snapshot(len(self._entries))

    async def clear(self) -> None:
        """Drop every entry of this product, here, in Redis and in the other processes."""
        dropped = self._l1.clear()
        self._invalidated(dropped, "everything")
        if self._redis is not None:
            await self._redis.invalidate([], [], [["all"]], everything=True)

    async def invalidate(
        self, *, company_id: str | None = None, external_org_id: str | None = None
    ) -> None:
        """Drop a company's entries and/or an org's mapping, everywhere (as our writes do).

        For entitlements changed outside this SDK (the dashboard, a webhook) that must not
        wait for the TTL.
        """
        await self.written(company_id=company_id, external_org_id=external_org_id)

    async def record_usage(self, company_id: str, usage: UsageResult) -> None:
        """A ``UsageResult`` arrived for a company: make its cached entries for that feature
        exact (here, in Redis and in the other processes).

        Called by ``billing.track_usage`` with each answer; a usage buffer calls it with the
        answers of the events it sends. A result older than what is cached, or a duplicate's
        (which repeats the first call's figures), expires the entries instead.
        """
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
        if self._redis is not None and not usage.duplicate:
            await self._redis.record_usage(company_id, usage)

    async def usage_refused(self, company_id: str, feature_code: str) -> None:
        """ChatarminOS refused usage (``PRECONDITION_FAILED``, ``FORBIDDEN``): what is cached
        for the company and feature was wrong. Its entries expire (kept for stale answers),
        so the next check asks the server; Redis and the other processes drop theirs."""
        self._l1.expire(self._l1.feature_keys(company_id, feature_code))
        self._counters.invalidations += 1
        logger.debug("cache: usage of %s refused for %s: expired", feature_code, company_id)
        if self._redis is not None:
            await self._redis.invalidate([company_id], [], [["c", company_id]])

    # -- after our own writes --------------------------------------------------------------

    async def written(
        self,
        *,
        company_id: str | None = None,
        external_org_id: str | None = None,
        company_record: bool = False,
        all_orgs: bool = False,
    ) -> None:
        """Drop what a write changed: a company's entries (its org mappings too with
        ``company_record``), an org's mapping, or every org mapping (``all_orgs``)."""
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
            return
        self._invalidated(dropped, " ".join("/".join(op) for op in ops))
        if self._redis is not None:
            await self._redis.invalidate(companies, orgs, ops, all_orgs=all_orgs)

    def _invalidated(self, dropped: int, what: str) -> None:
        self._counters.invalidations += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: dropped %d entries (%s)", dropped, what)

    def _on_message(self, ops: list[list[str]]) -> None:
        """Another process changed something: drop our copies (from the pub/sub listener)."""
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

    # -- the hit path: no I/O, no waiting ---------------------------------------------------

    def hit_check(self, company_id: object, feature_code: object) -> FeatureAccess | None:
        """A fresh cached ``features.check`` answer (the same frozen object), or ``None``."""
        if type(company_id) is str and type(feature_code) is str:
            key = ("c", company_id, feature_code)
            entry = self._entries.get(key)
            if entry is not None and entry.fresh_until > self._clock():
                self._hit(key)
                value: FeatureAccess = entry.value
                return value
        return None

    def hit_org_check(self, external_org_id: object, feature_code: object) -> FeatureAccess | None:
        """A fresh cached answer for ``check_by_external_org_id``, or ``None``."""
        if type(external_org_id) is str and type(feature_code) is str:
            mapping = self._entries.get(("o", external_org_id))
            now = self._clock()
            if mapping is not None and mapping.fresh_until > now and mapping.value is not None:
                key = ("c", mapping.value.id, feature_code)
                entry = self._entries.get(key)
                if entry is not None and entry.fresh_until > now:
                    self._hit(key)
                    value: FeatureAccess = entry.value
                    return value
        return None

    def hit_list(self, company_id: object) -> list[FeatureAccessDetail] | None:
        """A fresh cached ``features.list_access`` answer (a new list), or ``None``."""
        found, value = self._fresh(("l", company_id)) if type(company_id) is str else (False, None)
        return value if found else None

    def hit_org_access(self, external_org_id: object) -> OrgFeatureAccess | None:
        """A fresh cached ``get_access_by_external_org_id`` answer (a copy), or ``None``."""
        if type(external_org_id) is not str:
            return None
        found, value = self._fresh(("a", external_org_id))
        return value if found else None

    def hit_mapping(self, external_org_id: object) -> tuple[bool, Company | None]:
        """``(True, company or None)`` when ``get_by_product_link`` is cached and fresh."""
        if type(external_org_id) is not str:
            return False, None
        return self._fresh(("o", external_org_id))

    def _fresh(self, key: Key) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > self._clock():
            self._hit(key)
            return True, answer(entry.value)
        return False, None

    def _hit(self, key: Key) -> None:
        self._l1.touch(key)
        self._counters.hits += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: hit %s", describe(key))
        record_cached(key[0], "cache")

    # -- loads ----------------------------------------------------------------------------

    async def load_check(
        self, company_id: str, feature_code: str, fetch: AsyncFetch[FeatureAccess]
    ) -> FeatureAccess:
        """``features.check`` on a miss (arguments already checked)."""
        result: FeatureAccess = await self.load(
            ("c", company_id, feature_code), fetch, feature_code
        )
        return result

    async def load_list(
        self, company_id: str, fetch: AsyncFetch[list[FeatureAccessDetail]]
    ) -> list[FeatureAccessDetail]:
        """``features.list_access`` on a miss."""
        result: list[FeatureAccessDetail] = await self.load(("l", company_id), fetch)
        return result

    async def load_org_access(
        self, external_org_id: str, fetch: AsyncFetch[OrgFeatureAccess]
    ) -> OrgFeatureAccess:
        """``features.get_access_by_external_org_id`` on a miss."""
        result: OrgFeatureAccess = await self.load(("a", external_org_id), fetch)
        return result

    async def load_mapping(
        self, external_org_id: str, fetch: AsyncFetch[Company | None]
    ) -> Company | None:
        """``companies.get_by_product_link`` on a miss."""
        result: Company | None = await self.load(("o", external_org_id), fetch)
        return result

    async def load(self, key: Key, fetch: AsyncFetch[Any], feature: str | None = None) -> Any:
        """Answer ``key`` from Redis or the server; during an outage, stale or fallback.

        ``feature`` is the feature code whose fallback policy may answer (checks only).
        """
        self._counters.misses += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: miss %s", describe(key))
        if self._outage.active:
            quick = self._outage_answer(key, feature)
            if quick is not None and self._refresh_later(
                key, lambda: self._load_and_store(key, fetch)
            ):
                return quick
        try:
            return await self._load_and_store(key, fetch)
        except ChatarminOSError as error:
            quick = self._after_failure(error, key, feature)
            if quick is None:
                raise
            return quick

    async def load_org_check(
        self,
        external_org_id: str,
        feature_code: str,
        fetch: AsyncFetch[FeatureAccess],
        resolve: AsyncFetch[Company | None],
    ) -> FeatureAccess:
        """``check_by_external_org_id`` on a miss: ``fetch`` asks the server; ``resolve``
        (``companies.get_by_product_link``) learns the org's company alongside, when it is
        not known, so the answer is stored under the company (shared with ``check``,
        updated by usage, dropped by the company's writes)."""
        key = ("oc", external_org_id, feature_code)
        self._counters.misses += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: miss %s", describe(key))

        async def load() -> FeatureAccess:
            return await self._load_org_check(external_org_id, feature_code, fetch, resolve)

        if self._outage.active:
            quick = self._org_outage_answer(external_org_id, feature_code)
            if quick is not None and self._refresh_later(key, load):
                answered: FeatureAccess = quick
                return answered
        try:
            result: FeatureAccess = await self._single_flight(key, load)
        except ChatarminOSError as error:
            if not is_outage(error):
                raise
            self._outage_noticed(error)
            stale: FeatureAccess | None = self._org_outage_answer(external_org_id, feature_code)
            if stale is None:
                raise
            return stale
        return result

    async def _load_org_check(
        self,
        org: str,
        feature_code: str,
        fetch: AsyncFetch[FeatureAccess],
        resolve: AsyncFetch[Company | None],
    ) -> FeatureAccess:
        mapping = self._entries.get(("o", org))
        fresh = mapping is not None and mapping.fresh_until > self._clock()
        if not fresh and self._redis is not None:  # another process may know the company
            fresh = (await self._from_redis(("o", org)))[0]
            mapping = self._entries.get(("o", org))
        if fresh and mapping is not None:
            if mapping.value is None:  # not linked: the server says what it says
                return await fetch()
            key = ("c", mapping.value.id, feature_code)
            value: FeatureAccess = await self._load_and_store(key, fetch)
            return value

        async def company() -> Company | None:
            try:
                found: Company | None = await self.load(("o", org), resolve)
            except ChatarminOSError:
                return None  # the check alone decides what the caller gets
            return found

        started = self._l1.begin_load()
        value, linked = await arun_both(fetch, company)
        self._server_answered()
        if isinstance(linked, Company):
            await self._store(("c", linked.id, feature_code), value, started)
        return value

    async def _single_flight(self, key: Key, load: AsyncFetch[_T]) -> _T:
        """Run ``load`` once for all concurrent callers of ``key``."""
        while True:
            flight = _Flight(new_async_event())
            current = self._flights.setdefault(key, flight)
            if current is flight:
                break
            self._counters.coalesced += 1
            await current.done.wait()
            if current.error is None:
                shared: _T = answer(current.value)
                return shared
            if isinstance(current.error, Exception):
                raise current.error
            # The loading caller was cancelled: load again (maybe as the one loading).
        try:
            flight.value = await load()
            return flight.value  # type: ignore[no-any-return]
        except BaseException as error:
            flight.error = error
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

    async def _load_and_store(self, key: Key, fetch: AsyncFetch[_T]) -> _T:
        """Redis first (when on, and fresh there), else the server: one request for all
        concurrent callers (single flight). The answer is stored."""
        generation: str | None = None
        if self._redis is not None:
            found, value, generation = await self._from_redis(key)
            if found:
                result: _T = value
                return result
        return await self._single_flight(key, lambda: self._fetch_and_store(key, fetch, generation))

    async def _from_redis(self, key: Key) -> tuple[bool, Any, str | None]:
        """``(True, answer, None)`` when Redis holds a fresh entry for ``key`` (kept here
        too), else ``(False, None, generation)``: the generation a write of the server's
        answer must find (``None`` when Redis cannot be used)."""
        redis = self._redis
        assert redis is not None
        started = self._l1.begin_load()
        redis.ensure_listener()
        held = self._entries.get(key)
        company = self._company_hint(key)
        found = await redis.read(key, company)
        if found is None:
            return False, None, None
        raw, source = found
        if (  # the bytes we decoded before: no decoding
            raw is not None
            and held is not None
            and source == held.raw
            and self._l1.refresh(key, held, self._redis_fresh_until(held), started)
        ):
            self._counters.redis_hits += 1
            return True, held.value, None
        decoded = redis.decode(key, raw, source)
        if decoded is not None:
            value, fetched_wall = decoded
            age = max(0.0, wall_clock() - fetched_wall)
            fresh = self._store_from_redis(key, value, age, started, source)
            if fresh and age < self._options.ttl:
                self._counters.redis_hits += 1
                return True, answer(value), None
        self._counters.redis_misses += 1
        return False, None, await redis.generation(key, company)

    async def _fetch_and_store(self, key: Key, fetch: AsyncFetch[_T], generation: str | None) -> _T:
        started = self._l1.begin_load()
        live = await fetch()
        self._server_answered()
        await self._store(key, live, started, generation)
        return live

    def _company_hint(self, key: Key) -> str | None:
        """The company of an org's access, from the org's mapping (for its Redis place)."""
        if key[0] != "a":
            return None
        mapping = self._entries.get(("o", key[1]))
        return mapping.value.id if mapping is not None and mapping.value is not None else None

    def _redis_fresh_until(self, entry: Entry) -> float:
        """Until when an entry Redis still holds unchanged answers here."""
        return min(entry.fetched_at + self._options.ttl, self._clock() + self._options.local_ttl)

    def _store_from_redis(
        self, key: Key, value: Any, age: float, started: int, raw: object
    ) -> bool:
        """Keep an entry read from Redis; whether it may answer as fresh."""
        now = self._clock()
        fetched_at = now - age
        fresh_until = min(fetched_at + self._options.ttl, now + self._options.local_ttl)
        near = near_limit(value, self._options.margin)
        entry = Entry(value, fetched_at, fresh_until, company_of(key, value), near=near, raw=raw)
        self._l1.put(key, entry, started)
        return not near

    async def _store(
        self, key: Key, value: Any, started: int, generation: str | None = None
    ) -> None:
        """Keep a live answer: here (as ``provenance="cache"``) and in Redis."""
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
        if redis is not None and generation is not None:
            await redis.write(key, cached, company, generation)

    # -- outages ----------------------------------------------------------------------------

    def _server_answered(self) -> None:
        if self._outage.recovered():
            logger.info("cache: ChatarminOS answers again")

    def _outage_noticed(self, error: ChatarminOSError) -> None:
        first = not self._outage.active
        self._outage.failed(self._clock())
        if first:
            logger.warning(
                "cache: ChatarminOS cannot be reached (%s); answering from the cache", error
            )

    def _after_failure(self, error: ChatarminOSError, key: Key, feature: str | None) -> Any:
        if not is_outage(error):
            return None
        self._outage_noticed(error)
        return self._outage_answer(key, feature)

    def _outage_answer(self, key: Key, feature: str | None) -> Any:
        """A stale entry young enough, else the feature's fallback, else ``None``."""
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

    def _org_outage_answer(self, org: str, feature_code: str) -> Any:
        mapping = self._entries.get(("o", org))
        if (
            mapping is not None
            and mapping.value is not None
            and self._clock() - mapping.fetched_at < self._options.max_stale
        ):
            stale = self._stale(("c", mapping.value.id, feature_code))
            if stale is not None:
                return stale
        return self._outage_answer(("oc", org, feature_code), feature_code)

    def _stale(self, key: Key) -> Any:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry.fetched_at >= self._options.max_stale:
            return None
        self._counters.stale += 1
        if logger.isEnabledFor(_DEBUG):
            logger.debug("cache: stale %s", describe(key))
        record_cached(key[0], "stale")
        return with_provenance(entry.value, "stale")

    def _refresh_later(self, key: Key, load: AsyncFetch[Any]) -> bool:
        """During an outage: whether the caller may be answered without asking the server.

        Yes until the retry time; then one background ``load`` (which stores what it gets)
        tries the server (its success ends the outage) while callers keep getting stale or fallback
        answers. Where no background work can run (trio outside ``async with``), the caller
        asks the server itself.
        """
        outage = self._outage
        if self._clock() < outage.retry_at or outage.probing:
            return True

        async def refresh() -> None:
            try:
                await load()
            except ChatarminOSError as error:
                if is_outage(error):
                    self._outage.failed(self._clock())
                logger.debug("cache: background refresh of %s failed: %s", describe(key), error)
            else:
                self._counters.refreshes += 1
                logger.debug("cache: refreshed %s in the background", describe(key))

        try:
            outage.probe = self._background.start(refresh, "chatarmin_os cache refresh")
        except ChatarminOSError:
            return False
        return True

    async def aclose(self) -> None:
        """Stop the Redis listener and close the Redis connections (the client's closing step)."""
        if self._redis is not None:
            await self._redis.aclose()


class AsyncRedisLevel:
    """The cache's shared level in Redis, and the listener for other processes' changes.

    Redis being slow, down or unreachable never raises: each failure counts in
    ``stats().redis_errors``, is logged (DEBUG; WARNING when Redis becomes unreachable, INFO
    when it answers again) and pauses Redis for a back-off (0.5 s doubling to 30 s), while the
    cache goes on in this process alone. The async client uses ``redis.asyncio`` under
    asyncio (one connection pool per event loop); under trio it has no Redis level.
    """

    def __init__(
        self,
        url: str,
        keys: RedisKeys,
        cache: AsyncEntitlementCache,
        background: AsyncBackground,
        options: CacheOptions,
    ) -> None:
        self._url = url
        self._keys = keys
        self._cache = cache
        self._background = background
        self._clock = cache._clock
        self._px = int(max(options.ttl, options.max_stale) * 1000) + 1000
        self._closing = False
        load_async_redis()  # fail at construction when the package is missing ...
        check_redis_url(url)  # ... or the URL is one it cannot use
        self._reset()

    def _reset(self) -> None:
        self._client: Any = None
        self._client_loop: object | None = None
        self._scripts: dict[str, Any] = {}
        self._down_until = 0.0
        self._backoff = REDIS_FIRST_BACKOFF
        self._lock = threading.Lock()
        self._listener: Any = None
        self._loads = 0
        self._check_listener = True
        self._listener_done: Any = None
        self._listener_started = False
        self._warned_loop = False

    def _after_fork_in_child(self) -> None:
        self._reset()  # the parent's sockets and listener stay the parent's

    # -- connections ------------------------------------------------------------------------

    def available(self) -> bool:
        """Whether Redis may be used now (not in a back-off, usable under this loop)."""
        return self._clock() >= self._down_until and async_redis_loop() is not None

    def _connect(self) -> Any:
        """The Redis client for the running loop (made on first use), or ``None``."""
        loop = async_redis_loop()
        if loop is None:
            if not self._warned_loop:
                self._warned_loop = True
                logger.info("cache: no Redis level without an asyncio loop (in-process only)")
            return None
        if self._client is None or self._client_loop is not loop:
            with self._lock:
                if self._client is None or self._client_loop is not loop:
                    module = load_async_redis()
                    try:
                        client = module.Redis.from_url(
                            self._url,
                            socket_timeout=REDIS_TIMEOUT,
                            socket_connect_timeout=REDIS_TIMEOUT,
                            retry=None,
                        )
                    except Exception as error:  # e.g. a URL redis cannot parse
                        self._failed("connect", error)
                        return None
                    self._scripts = {
                        name: client.register_script(source)
                        for name, source in (
                            ("set", SET_IF_GENERATION),
                            ("invalidate", INVALIDATE),
                            ("usage", RECORD_USAGE),
                        )
                    }
                    self._client, self._client_loop = client, loop
                    self._check_listener = True  # another loop: is the listener there?
        return self._client

    def _failed(self, what: str, error: BaseException) -> None:
        self._cache._counters.redis_errors += 1
        first = self._clock() >= self._down_until and self._backoff == REDIS_FIRST_BACKOFF
        self._down_until = self._clock() + self._backoff
        if first:
            logger.warning(
                "cache: Redis at %s unreachable (%s: %s); in-process only for now",
                redacted_url(self._url),
                type(error).__name__,
                error,
            )
        logger.debug("cache: Redis %s failed: %s: %s", what, type(error).__name__, error)
        self._backoff = min(self._backoff * 2, REDIS_MAX_BACKOFF)

    def _succeeded(self) -> None:
        if self._backoff != REDIS_FIRST_BACKOFF:
            logger.info("cache: Redis at %s answers again", redacted_url(self._url))
            self._backoff = REDIS_FIRST_BACKOFF

    def _usable(self) -> Any:
        if self._closing or self._clock() < self._down_until:
            return None
        return self._connect()

    # -- entries ---------------------------------------------------------------------------

    async def read(self, key: Key, company: str | None) -> tuple[bytes | None, object] | None:
        """``(entry bytes, source)`` from Redis, ``None`` without Redis.

        ``source`` is what the answer is made of (the entry's bytes, with its usage
        overlays): an entry decoded from an equal source needs no decoding again.
        """
        client = self._usable()
        place = self._keys.location(key, company)
        if client is None or place is None:
            return None
        bucket, field = place
        try:
            if key[0] == "c":
                raw, overlay = await client.hmget(bucket, field, f"use:{key[2]}")
                source: object = raw if overlay is None else (raw, overlay)
            elif key[0] == "o":
                raw = source = await client.hget(bucket, field)
            else:
                fields = await client.hgetall(bucket)
                raw = fields.get(field.encode())
                source = (raw, *sorted(v for k, v in fields.items() if k.startswith(b"use:")))
        except Exception as error:
            self._failed("read", error)
            return None
        if self._backoff != REDIS_FIRST_BACKOFF:
            self._succeeded()
        return raw, source

    async def generation(self, key: Key, company: str | None) -> str | None:
        """The generation of the hash ``key`` lives in, read before asking the server (a
        write of the answer is refused if the hash was invalidated since); ``None`` when
        Redis cannot be used."""
        client = self._usable()
        place = self._keys.location(key, company)
        if client is None or place is None:
            return None
        try:
            generation = await client.hget(place[0], "_g")
        except Exception as error:
            self._failed("read", error)
            return None
        return "0" if generation is None else generation.decode()

    def decode(self, key: Key, raw: bytes | None, source: object) -> tuple[Any, float] | None:
        """The value of an entry read by :meth:`read` (overlays applied) and the unix time it
        was fetched; ``None`` when there is none, or none this SDK can read."""
        if raw is None:
            return None
        try:
            value, fetched = decode_entry(key[0], raw)
            if isinstance(source, tuple):
                value = apply_overlays(value, fetched, source[1:])
        except Exception as error:  # an entry this SDK cannot read: load it again
            logger.debug("cache: unreadable Redis entry %s: %s", describe(key), error)
            return None
        return value, fetched

    async def write(self, key: Key, value: Any, company: str | None, generation: str) -> None:
        """Store an answer, unless the hash was invalidated since ``generation`` was read."""
        client = self._usable()
        place = self._keys.location(key, company)
        if client is None or place is None:
            return
        bucket, field = place
        try:
            await self._scripts["set"](
                keys=[bucket],
                args=[generation, field, encode_entry(value, wall_clock()), self._px],
            )
        except Exception as error:
            self._failed("write", error)
            return
        self._succeeded()

    async def record_usage(self, company: str, usage: UsageResult) -> None:
        """Write a usage overlay and tell the other processes."""
        client = self._usable()
        if client is None:
            return
        feature = usage.feature_code
        try:
            await self._scripts["usage"](
                keys=[self._keys.company(company)],
                args=[
                    f"use:{feature}",
                    f"chk:{feature}",
                    usage.current_usage,
                    encode_usage(usage, wall_clock()),
                    self._px,
                ],
            )
            await client.publish(
                self._keys.channel, encode_message(self._cache._id, [["u", company, feature]])
            )
        except Exception as error:
            self._failed("usage", error)
            return
        self._succeeded()

    async def invalidate(
        self,
        companies: list[str],
        orgs: list[str],
        ops: list[list[str]],
        *,
        all_orgs: bool = False,
        everything: bool = False,
    ) -> None:
        """Drop hashes (bumping their generation), then tell the other processes."""
        client = self._usable()
        if client is None:
            return
        buckets = [self._keys.company(c) for c in companies] + [self._keys.org(o) for o in orgs]
        try:
            if buckets:
                await self._scripts["invalidate"](keys=buckets, args=[self._px])
            if all_orgs or everything:
                pattern = self._keys.all_pattern() if everything else self._keys.orgs_pattern()
                doomed = [key async for key in client.scan_iter(match=pattern, count=500)]
                doomed = [key for key in doomed if key != self._keys.channel.encode()]
                for start in range(0, len(doomed), 500):
                    await client.delete(*doomed[start : start + 500])
            await client.publish(self._keys.channel, encode_message(self._cache._id, ops))
        except Exception as error:
            self._failed("invalidate", error)
            return
        self._succeeded()

    # -- the listener -----------------------------------------------------------------------

    def ensure_listener(self) -> None:
        """Start the pub/sub listener when it is not running here (lazily, on a miss).

        Looked at on every 64th load (and whenever the connection is made anew, e.g. under
        another event loop): a check costs a lock, and a dead listener only means entries
        here live out their ``local_ttl``.
        """
        self._loads += 1
        if self._loads & 63 and not self._check_listener:
            return
        self._check_listener = False
        listener = self._listener
        if self._closing or (listener is not None and listener.alive()):
            return
        if async_redis_loop() is None:
            return
        try:
            self._listener = self._background.start(self._listen, "chatarmin_os cache listener")
        except ChatarminOSError:  # no background work possible here: TTLs bound staleness
            self._listener = None

    async def _listen(self) -> None:
        done = new_async_event()
        self._listener_done = done
        backoff = REDIS_FIRST_BACKOFF
        try:
            while not self._closing:
                pubsub: Any = None
                try:
                    client = self._connect()
                    if client is None:
                        return
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self._keys.channel)
                    if self._listener_started:  # messages may have been missed meanwhile
                        self._cache._l1.clear()
                        logger.debug("cache: listening again; dropped every entry")
                    self._listener_started = True
                    backoff = REDIS_FIRST_BACKOFF
                    while not self._closing:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=_LISTEN_POLL
                        )
                        if message is not None and message.get("type") == "message":
                            self._deliver(message.get("data"))
                except Exception as error:
                    if self._closing:
                        return
                    self._failed("listen", error)
                    waited = 0.0
                    while waited < backoff and not self._closing:
                        await asleep(_LISTEN_POLL)
                        waited += _LISTEN_POLL
                    backoff = min(backoff * 2, REDIS_MAX_BACKOFF)
                finally:
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
        finally:
            done.set()

    def _deliver(self, data: Any) -> None:
        try:
            source, ops = decode_message(data)
        except (ValueError, TypeError, KeyError) as error:
            logger.debug("cache: unreadable pub/sub message: %s", error)
            return
        if source != self._cache._id:
            self._cache._on_message(ops)

    async def aclose(self) -> None:
        """Stop the listener (waiting at most 1 s) and close this loop's connections."""
        self._closing = True
        done, listener = self._listener_done, self._listener
        if done is not None and listener is not None and listener.alive():
            client = self._client if self._client_loop is async_redis_loop() else None
            if client is not None:  # wake the listener now (it ignores its own messages)
                with contextlib.suppress(Exception):
                    await client.publish(self._keys.channel, encode_message(self._cache._id, []))
            await await_event(done, _CLOSE_WAIT)
        client, self._client = self._client, None
        if client is not None and self._client_loop is async_redis_loop():
            with contextlib.suppress(Exception):
                await client.aclose()


class AsyncCacheGroup:
    """The caches of one client and its ``with_options`` copies: one per product."""

    def __init__(self, options: CacheOptions, background: AsyncBackground) -> None:
        self.options = options
        self._background = background
        self._caches: dict[str, AsyncEntitlementCache] = {}

    def for_config(self, config: ClientConfig) -> AsyncEntitlementCache:
        """The cache of the product a client configuration talks to."""
        product = product_key(str(config.base_url), config.api_key)
        cache = self._caches.get(product)
        if cache is None:
            cache = self._caches.setdefault(
                product, AsyncEntitlementCache(self.options, product, self._background)
            )
        return cache

    async def aclose(self) -> None:
        """Close every cache's Redis connections (the owning client's closing step)."""
        for cache in list(self._caches.values()):
            await cache.aclose()
