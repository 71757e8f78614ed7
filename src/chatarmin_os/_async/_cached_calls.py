"""The client's calls through its entitlement cache: ``_call_cached``, the one path of
resources to the cache.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_cached_calls.py``. Light on
purpose: the cache's code loads only when a client has a cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from .._client.options import call_options
from .._client.raw import raw_call_active
from .._exceptions import ChatarminOSError
from .._models import Company
from .._procedure_cache import CACHE_RULES, MAPPING_PATH, MISS, Fills

if TYPE_CHECKING:
    from ._cache import AsyncEntitlementCache

__all__ = ["AsyncCachedCalls", "parse_mapping"]

_T = TypeVar("_T")

_QUERIES: dict[str, Fills] = {
    path: rule for path, rule in CACHE_RULES.items() if isinstance(rule, Fills)
}

_mapping_adapter: Any = None


def parse_mapping(value: Any) -> Company | None:
    """The answer of ``companies.getByProductLink``: a company or ``None``."""
    global _mapping_adapter
    if _mapping_adapter is None:
        from pydantic import TypeAdapter

        _mapping_adapter = TypeAdapter(Optional[Company]).validate_python  # noqa: UP045
    result: Company | None = _mapping_adapter(value)
    return result


class AsyncCachedCalls:
    """The client's calls through its entitlement cache (``AsyncChatarminOS`` inherits it).

    Resources call ``_call_cached`` for every procedure :data:`CACHE_RULES` covers and
    ``_call`` for the others; they never see the cache.
    """

    _cache: AsyncEntitlementCache | None

    if TYPE_CHECKING:  # the client's calls (AsyncBaseClient's)

        async def _call(
            self,
            path: str,
            input: Any,
            parse: Callable[[Any], _T],
            *,
            idempotent: bool = False,
            options: Mapping[str, Any] | None = None,
        ) -> _T: ...

        async def _call_many(
            self,
            path: str,
            inputs: Sequence[Any],
            parse: Callable[[Any], _T],
            *,
            idempotent: bool = False,
            max_retries: int | None = None,
            options: Mapping[str, Any] | None = None,
        ) -> list[_T | ChatarminOSError]: ...

    async def _call_cached(
        self,
        path: str,
        payload: Mapping[str, Any],
        parse: Callable[[Any], _T],
        check: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        *,
        idempotent: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> _T:
        """Call ``path`` as its rule in :data:`CACHE_RULES` says.

        A query: a fresh cached answer when there is one (``payload`` may hold the
        caller's values unchecked: only checked inputs have entries), else ``check``
        (``payload`` -> the input to send; raises ``InvalidInputError``) and a load.
        A mutation: sent, then what it changed is dropped (in a ``finally``: an unanswered
        write may have been applied). A usage call: sent; its answer updates cached quotas,
        a refusal expires them. Without a cache: ``_call`` of the checked input.

        Per-call ``options`` are checked first (even for an answer from the cache: they only
        change how a request is sent, so a fresh cached answer still answers). A raw call
        (``with_raw_response``) is never answered by the cache: a query is sent past it.
        """
        cache = self._cache
        if cache is None:  # the common case: no cache, no coroutine in between
            checked = payload if check is None else check(payload)
            return await self._call(path, checked, parse, idempotent=idempotent, options=options)
        if options:
            call_options(options)  # refused before the cache answers
        query = _QUERIES.get(path)
        if query is not None:
            if raw_call_active():
                checked = payload if check is None else check(payload)
                return await self._call(path, checked, parse, options=options)
            found = cache.hit(query, payload)
            if found is not MISS:
                hit: _T = found
                return hit
        return await self._call_through_cache(
            cache, path, payload, parse, check, idempotent, options
        )

    async def _call_through_cache(
        self,
        cache: AsyncEntitlementCache,
        path: str,
        payload: Mapping[str, Any],
        parse: Callable[[Any], _T],
        check: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None,
        idempotent: bool,
        options: Mapping[str, Any] | None,
    ) -> _T:
        """:meth:`_call_cached` when no fresh answer is cached (the hit path holds no cells)."""
        checked = payload if check is None else check(payload)

        async def send() -> _T:
            return await self._call(path, checked, parse, idempotent=idempotent, options=options)

        return await cache.call(CACHE_RULES[path], checked, send, self._find_company)

    async def _find_company(self, org: str) -> Company | None:
        """Ask the server which company ``org`` is linked to (no cache)."""
        return await self._call(MAPPING_PATH, {"externalOrgId": org}, parse_mapping)

    async def _call_many_cached(
        self,
        path: str,
        inputs: Sequence[Mapping[str, Any]],
        parse: Callable[[Any], _T],
        *,
        check: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[_T | ChatarminOSError]:
        """Many calls of a query: without a cache, in tRPC batches (``_call_many``, which
        checks every input first); with one, one by one through :meth:`_call_cached`
        (fresh answers at once, misses with its Redis level and outage rules)."""
        if self._cache is None:
            return await self._call_many(path, inputs, parse, options=options)
        answers: list[_T | ChatarminOSError] = []
        for payload in inputs:
            try:
                answers.append(
                    await self._call_cached(path, payload, parse, check=check, options=options)
                )
            except ChatarminOSError as exc:
                answers.append(exc)
        return answers
