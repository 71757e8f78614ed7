"""The entitlement cache of the async client: the parts that wait.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_cache.py``. Everything that
never waits (the hit path, bookkeeping, outage answers, fork reset) is in
:class:`chatarmin_os._cache.core.CacheCore`; the rules per procedure are in
:mod:`chatarmin_os._procedure_cache`. Here:

* :class:`AsyncEntitlementCache`: loads with single flight (concurrent misses for one key
  make one request), background refreshes during an outage, invalidation and usage updates
  that reach Redis and the other processes;
* :class:`AsyncCacheGroup`: the caches of one client and its ``with_options`` copies.

Resources reach the cache only through the client's ``_call_cached`` (``_cached_calls.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from .._cache.core import MAPPING_RULE, CacheCore, CacheGroupCore, Flight
from .._cache.rules import Key, answer
from .._concurrency import AsyncFetch, arun_both, new_async_event
from .._exceptions import ChatarminOSError, PermissionDeniedError, PreconditionFailedError
from .._models import Company, UsageResult
from .._procedure_cache import MISS, Drops, Fills, TracksUsage
from ._redis import AsyncRedisLevel

__all__ = ["AsyncCacheGroup", "AsyncEntitlementCache"]

_T = TypeVar("_T")

_FindCompany = Callable[[str], Any]  # org -> (a request for) its company, or None


class AsyncEntitlementCache(CacheCore):
    """The entitlement cache of one product (API key and base URL) in this process.

    ``client.cache`` is this object (``None`` without ``cache=``). Read its counters with
    :meth:`stats`; drop entries with :meth:`invalidate` (after changing entitlements some
    other way, e.g. from a webhook) or :meth:`clear`. :meth:`record_usage` is what
    ``billing.track_usage`` (and a usage buffer) calls with each answer.

    Thread-safe and task-safe; a forked child starts with an empty cache and without its
    parent's Redis connections and listener.
    """

    _redis_level = AsyncRedisLevel
    _redis: AsyncRedisLevel | None

    # -- public ----------------------------------------------------------------------------

    async def clear(self) -> None:
        """Drop every entry of this product, here, in Redis and in the other processes."""
        self._invalidated(self._l1.clear(), "everything")
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
        if self._usage_here(company_id, usage) and self._redis is not None:
            await self._redis.record_usage(company_id, usage)

    async def usage_refused(self, company_id: str, feature_code: str) -> None:
        """ChatarminOS refused usage (``PRECONDITION_FAILED``, ``FORBIDDEN``): what is cached
        for the company and feature was wrong. Its entries expire (kept for stale answers),
        so the next check asks the server; Redis and the other processes drop theirs."""
        self._refused_here(company_id, feature_code)
        if self._redis is not None:
            await self._redis.invalidate([company_id], [], [["c", company_id]])

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
        drop = self._drop_here(company_id, external_org_id, company_record, all_orgs)
        if drop is not None and self._redis is not None:
            await self._redis.invalidate(*drop, all_orgs=all_orgs)

    # -- the calls the rules cover ----------------------------------------------------------

    async def call(
        self,
        rule: Fills | Drops | TracksUsage,
        payload: Mapping[str, Any],
        send: AsyncFetch[_T],
        find_company: _FindCompany,
    ) -> _T:
        """A call ``rule`` covers, after the hit path missed: load a query's answer (Redis,
        the server, or during an outage stale and fallback answers); send a mutation, then
        drop what it changed (answered or not); keep cached quotas exact with usage.

        ``find_company(org)`` asks the server which company an org is linked to.
        """
        if isinstance(rule, Fills):
            key = rule.key_of(payload)
            assert key is not None  # a checked input: strings
            feature = None if rule.fallback is None else payload[rule.fallback]
            load: AsyncFetch[_T] = lambda: self._load_and_store(key, send)  # noqa: E731
            if rule.kind == "org_check":
                org_id, code = key[1], key[2]
                load = lambda: self._single_flight(  # noqa: E731
                    key, lambda: self._load_org_check(org_id, code, send, find_company)
                )
            loaded: _T = await self.load(key, load, feature)
            return loaded
        if isinstance(rule, TracksUsage):
            company, code = payload[rule.company], payload[rule.feature]
            try:
                usage = await send()
            except (PreconditionFailedError, PermissionDeniedError):
                await self.usage_refused(company, code)
                raise
            await self.record_usage(company, cast(UsageResult, usage))
            return usage
        answered: Any = None
        try:
            answered = await send()
            return cast(_T, answered)
        finally:
            company, org = self._write_scope(rule, payload, answered)
            if rule.org_company and company is None and org is not None:
                try:  # the org's company: cached mostly; asked for when not known
                    linked = await self.mapping(org, find_company)
                except ChatarminOSError:
                    linked = MISS
                if linked is MISS:
                    await self.clear()  # cannot tell which company changed
                    org = None
                elif linked is not None:
                    company = linked.id
            if company is not None or org is not None or rule.all_orgs:
                await self.written(
                    company_id=company,
                    external_org_id=org,
                    company_record=rule.company_record,
                    all_orgs=rule.all_orgs,
                )

    async def mapping(self, org: str, find_company: _FindCompany) -> Company | None:
        """The company an org is linked to (``companies.getByProductLink``), hit or load."""
        found = self.hit(MAPPING_RULE, {"externalOrgId": org})
        if found is not MISS:
            return cast("Company | None", found)
        key = ("o", org)
        result: Company | None = await self.load(
            key, lambda: self._load_and_store(key, lambda: find_company(org))
        )
        return result

    # -- loads ----------------------------------------------------------------------------

    async def load(self, key: Key, load: AsyncFetch[Any], feature: str | None = None) -> Any:
        """Answer ``key`` with ``load``; during an outage, stale or fallback answers.

        ``feature`` is the feature code whose fallback policy may answer (checks only).
        """
        quick = self._missed(key, feature)
        if quick is not None and self._refresh_later(key, load):
            return quick
        try:
            return await load()
        except ChatarminOSError as error:
            quick = self._after_failure(error, key, feature)
            if quick is None:
                raise
            return quick

    async def _load_org_check(
        self, org: str, feature_code: str, fetch: AsyncFetch[_T], find_company: _FindCompany
    ) -> _T:
        """An org's check: stored under its company (shared with ``check``, updated by
        usage, dropped by the company's writes), learnt alongside when not known."""
        mapping = self._fresh_entry(("o", org))
        if (  # another process may know it
            mapping is None
            and self._redis is not None
            and (await self._from_redis(("o", org)))[0] is not MISS
        ):
            mapping = self._entries.get(("o", org))
        if mapping is not None:
            if mapping.value is None:  # not linked: the server says what it says
                return await fetch()
            return await self._load_and_store(("c", mapping.value.id, feature_code), fetch)

        async def company() -> Company | None:
            try:
                return await self.mapping(org, find_company)
            except ChatarminOSError:
                return None  # the check alone decides what the caller gets

        started = self._l1.begin_load()
        value, linked = await arun_both(fetch, company)
        self._server_answered()
        if isinstance(linked, Company):
            await self._store(("c", linked.id, feature_code), value, started)
        return value

    async def _single_flight(self, key: Key, load: AsyncFetch[_T]) -> _T:
        """Run ``load`` once for all concurrent callers of ``key``."""
        while True:
            flight = Flight(new_async_event())
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
            value, generation = await self._from_redis(key)
            if value is not MISS:
                result: _T = value
                return result
        return await self._single_flight(key, lambda: self._fetch_and_store(key, fetch, generation))

    async def _from_redis(self, key: Key) -> tuple[Any, str | None]:
        """``(answer, None)`` when Redis holds a fresh entry for ``key`` (kept here too),
        else ``(MISS, generation)``: the generation a write of the server's answer must
        find (``None`` when Redis cannot be used)."""
        redis = self._redis
        assert redis is not None
        started = self._l1.begin_load()
        redis.ensure_listener()
        company = self._company_hint(key)
        found = await redis.read(key, company)
        if found is None:
            return MISS, None
        value = self._redis_answer(key, found, started)
        if value is not MISS:
            return value, None
        return MISS, await redis.generation(key, company)

    async def _fetch_and_store(self, key: Key, fetch: AsyncFetch[_T], generation: str | None) -> _T:
        started = self._l1.begin_load()
        live = await fetch()
        self._server_answered()
        await self._store(key, live, started, generation)
        return live

    async def _store(
        self, key: Key, value: Any, started: int, generation: str | None = None
    ) -> None:
        """Keep a live answer: here (as ``provenance="cache"``) and in Redis."""
        cached, company = self._keep(key, value, started)
        if self._redis is not None and generation is not None:
            await self._redis.write(key, cached, company, generation)

    async def _refresh(self, key: Key, load: AsyncFetch[Any]) -> None:
        """The background request of an outage (started by ``_refresh_later``)."""
        try:
            await load()
        except ChatarminOSError as error:
            self._refreshed(key, error)
        else:
            self._refreshed(key, None)

    async def aclose(self) -> None:
        """Stop the Redis listener and close the Redis connections (the client's closing step)."""
        if self._redis is not None:
            await self._redis.aclose()


class AsyncCacheGroup(CacheGroupCore[AsyncEntitlementCache]):
    """The caches of one client and its ``with_options`` copies: one per product."""

    _cache_type = AsyncEntitlementCache

    async def aclose(self) -> None:
        """Close every cache's Redis connections (the owning client's closing step)."""
        for cache in list(self._caches.values()):
            await cache.aclose()
