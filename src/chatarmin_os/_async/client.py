"""``AsyncChatarminOS``: the client class with every namespace of the API."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from .._base import MAX_TIMEOUT, product_key
from .._batching import BatchOptions
from .._client.options import request_options
from .._client.public import ChatarminOSCore
from .._concurrency import AsyncSleeper
from .._exceptions import ChatarminOSError, InvalidInputError
from .._inputs import Hints, HintsDict, hints_input
from .._models import FeatureAccess, OnboardResult, UsageResult
from .._types import NOT_GIVEN, AsyncHTTPClient, NotGiven, Timeout
from .._validate import compact, optional_str, optional_timestamp, require_str
from ._base_client import AsyncBaseClient
from ._cached_calls import AsyncCachedCalls
from ._raw import to_raw_response_wrapper
from .resources._resource import namespace

if TYPE_CHECKING:
    from .._ledger.options import ReservationOptions
    from .._ledger.reservation import ReservationCore
    from .._models import Company
    from .._usage.events import UsageEvent
    from .._usage.options import UsageBufferOptions
    from .._usage.registry import UsageBuffers
    from ._cache import AsyncCacheGroup, AsyncEntitlementCache
    from ._reservation import AsyncReservations
    from ._usage_buffer import AsyncUsageBuffer
    from .resources.billing import AsyncBilling, AsyncBillingWithRawResponse
    from .resources.companies import AsyncCompanies, AsyncCompaniesWithRawResponse
    from .resources.contacts import AsyncContacts, AsyncContactsWithRawResponse
    from .resources.features import AsyncFeatures, AsyncFeaturesWithRawResponse
    from .resources.links import AsyncLinks, AsyncLinksWithRawResponse
    from .resources.subscriptions import AsyncSubscriptions, AsyncSubscriptionsWithRawResponse
    from .resources.tiers import AsyncTiers, AsyncTiersWithRawResponse

__all__ = ["AsyncChatarminOS", "AsyncChatarminOSWithRawResponse"]

_C = TypeVar("_C", bound="AsyncChatarminOS")


class AsyncChatarminOS(
    AsyncCachedCalls, AsyncBaseClient, ChatarminOSCore[AsyncHTTPClient, AsyncSleeper]
):
    """The ChatarminOS API client for async code.

    Args:
        api_key: your ``os_sk_...`` key; defaults to the ``OS_API_KEY`` environment variable.
        base_url: defaults to ``CHATARMIN_OS_BASE_URL``, else
            ``https://os.chatarmin.com/api/v1``. A path prefix such as ``/api/v1`` is kept.
        timeout: seconds, an :class:`httpx.Timeout` or ``httpx2.Timeout``, or ``None`` for
            none; default 30 s (5 s to connect).
        max_retries: retries of a failed call (default 2); see the README for what retries.
        transformer: ``"json"`` (default) or ``"superjson"``, as the server is set up.
        http_client: your own ``httpx2.AsyncClient`` or :class:`httpx.AsyncClient` (proxies,
            custom transport, ...). It is yours: closing this client leaves it open. Without
            it the client makes its own pool: with httpx2 when installed (the ``httpx2``
            extra), else with httpx; ``CHATARMIN_OS_HTTP_LIBRARY=httpx|httpx2`` forces one.
        default_headers: extra headers sent with every request.
        sleep: how to wait between retries (default: really wait); inject a fake in tests.
        batching: ``True`` or a :class:`~chatarmin_os.BatchOptions` to send calls made at the
            same time (tasks of ``asyncio.gather``, a task group) as tRPC batch requests;
            off by default. Each call keeps its own result and error.
        cache: the entitlement cache for gating in the hot path: ``None`` (default, every
            call asks the server), ``True`` (the defaults) or a
            :class:`~chatarmin_os.CacheOptions`. See the README's "Gating in the hot path".
        usage_buffer: a :class:`~chatarmin_os.UsageBufferOptions` for
            ``billing.track_usage_later`` (batch size, interval, room, a spool file, ...).
            Without it the buffer is made with the defaults on first use, and the FastAPI and
            Django integrations track usage with ``billing.track_usage``; with it they buffer.

    Use it in ``async with``, or call :meth:`aclose` when done (it flushes the usage buffer).
    """

    _cache: AsyncEntitlementCache | None
    _cache_group: AsyncCacheGroup | None

    companies: namespace[AsyncCompanies] = namespace(
        ".companies", "AsyncCompanies", "Customer companies: look up, create, update, smart-link."
    )
    contacts: namespace[AsyncContacts] = namespace(
        ".contacts", "AsyncContacts", "People at a company."
    )
    features: namespace[AsyncFeatures] = namespace(
        ".features", "AsyncFeatures", "Feature entitlements and limits."
    )
    billing: namespace[AsyncBilling] = namespace(
        ".billing",
        "AsyncBilling",
        "Usage tracking, Stripe checkout and subscriptions, billing status.",
    )
    tiers: namespace[AsyncTiers] = namespace(".tiers", "AsyncTiers", "Subscription tiers.")
    subscriptions: namespace[AsyncSubscriptions] = namespace(
        ".subscriptions",
        "AsyncSubscriptions",
        "Alias of ``tiers.apply`` as ``subscriptions.create``.",
    )
    links: namespace[AsyncLinks] = namespace(".links", "AsyncLinks", "Manual product links.")

    @cached_property
    def with_raw_response(self) -> AsyncChatarminOSWithRawResponse:
        """Every method, returning the HTTP answer: an :class:`~chatarmin_os.APIResponse`
        with ``status_code``, ``headers``, ``http_request``, ``elapsed``, ``request_id`` and
        ``parse()`` (the plain call's result). Raw calls always ask the server (never the
        entitlement cache).

        Example::

            response = await client.with_raw_response.tiers.list()
            print(response.status_code, response.request_id)
            tiers = response.parse()
        """
        return AsyncChatarminOSWithRawResponse(self)

    def _init_cache(self) -> None:
        group = self._cache_group
        self._cache = group.for_config(self._config) if group is not None else None

    @property
    def cache(self) -> AsyncEntitlementCache | None:
        """The entitlement cache of this client's product (``None`` without ``cache=``).

        ``client.cache.stats()`` reads its counters; ``with_options`` copies share it (a copy
        with another ``api_key`` is another product, with entries of its own).
        """
        return self._cache

    def _init_usage_buffers(
        self, options: UsageBufferOptions | None, parent: AsyncChatarminOS | None = None
    ) -> None:
        """The usage buffers, one per API key and URL, shared with ``with_options`` copies."""
        if parent is None:
            from .._usage.registry import UsageBuffers

            self._usage_buffers: UsageBuffers[AsyncUsageBuffer] = UsageBuffers(options)
        else:
            self._usage_buffers = parent._usage_buffers
        self._usage_buffer_options = self._usage_buffers.options
        self._usage_buffer: AsyncUsageBuffer | None = None
        # The latest usage result per (company, feature) of the batches being settled.
        self._batch_usage: dict[tuple[str, str], UsageResult] = {}

    @property
    def usage_buffer(self) -> AsyncUsageBuffer:
        """The buffer of ``billing.track_usage_later``: ``stats()``, ``flush()``, ``options``.

        Made on first use; ``with_options`` copies with the same API key and URL share it.
        """
        buffer = self._usage_buffer
        if buffer is None:
            dest = product_key(str(self._config.base_url), self._config.api_key)
            buffer = self._usage_buffers.get_or_make(dest, self._make_usage_buffer)
            self._usage_buffer = buffer
        return buffer

    def _make_usage_buffer(self, options: UsageBufferOptions, dest: str) -> AsyncUsageBuffer:
        """A buffer sending through a copy of this client whose batches hold a whole buffer
        batch (and that stays open while this one closes), made on the first send."""
        from .._usage.ports import OnFirstUse
        from .._usage.spool import lease_seconds
        from ._usage_buffer import AsyncUsageBuffer

        batching = self.batching
        copy = dataclasses.replace(batching or BatchOptions(), max_items=options.max_batch)
        sender = OnFirstUse(lambda: self.with_options(batching=copy))

        async def send(inputs: list[dict[str, Any]]) -> list[UsageResult | ChatarminOSError]:
            return await sender()._call_many(
                "billing.trackUsage",
                inputs,
                UsageResult.model_validate,
                idempotent=True,
                max_retries=0,
            )

        async def find_companies(orgs: list[str]) -> list[Company | ChatarminOSError | None]:
            return await sender().companies._get_many_by_product_link(orgs)

        buffer = AsyncUsageBuffer(
            options,
            dest,
            send=send,
            find_companies=find_companies,
            background=self._background,
            sleep=self._sleep,
            answered=self._usage_answered,
            refused=self._usage_refused,
            acknowledged=functools.partial(self._usage_acknowledged, dest),
            settled=functools.partial(self._usage_settled, dest),
            lease=lease_seconds(self.timeout),
            batch_limit=None if batching is None else batching.max_items,
        )
        self._on_close(buffer.aclose)
        return buffer

    async def flush(self, timeout: float | None = 30.0) -> int:
        """Send the usage enqueued with ``billing.track_usage_later`` before this call.

        Waits until ChatarminOS answered each of those events (counted, a duplicate, or
        refused: see ``on_error``) and returns ``0``; or, when ``timeout`` seconds (``None``:
        no limit) passed first, returns how many are still pending (the worker keeps
        sending them). Never raises for the network.

        Example::

            key = await client.billing.track_usage_later(company_id=..., feature_code="ai_credit", quantity=1)
            assert await client.flush(timeout=10) == 0
        """
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 <= timeout <= MAX_TIMEOUT
        ):
            raise InvalidInputError("timeout", "must be seconds from 0 to 1,000,000, or None")
        left = 0
        for buffer in self._usage_buffers.all():
            left += await buffer.flush(timeout)
        for flow in self._reservation_flows.all():  # what the quota ledger deferred
            await flow.ledger.drain()
        return left

    async def _usage_answered(
        self, company_id: str, feature_code: str, result: UsageResult
    ) -> None:
        """A usage result the buffer received: the cache keeps cached quotas exact with it,
        once a batch (the latest result of each company's feature: see :meth:`_record_usage`)."""
        if self._cache is None:
            return
        if result.duplicate:  # repeats older figures: as it is
            await self._cache.record_usage(company_id, result)
            return
        latest = self._batch_usage
        key = (company_id, feature_code)
        kept = latest.get(key)
        # (Two batches settling at once may keep the lower: the cache then expires the
        # entry and asks the server, never counts too little.)
        if kept is None or result.current_usage >= kept.current_usage:
            latest[key] = result

    async def _record_usage(self) -> None:
        """Hand the cache the latest usage of each company's feature the buffer heard: one
        Redis write and message a batch, not one an event (a later result supersedes)."""
        latest = self._batch_usage
        while latest and self._cache is not None:
            try:
                (company_id, _), result = latest.popitem()
            except KeyError:  # the other batch took the last one
                return
            await self._cache.record_usage(company_id, result)

    async def _usage_refused(self, company_id: str, feature_code: str) -> None:
        """The buffer's event hit a limit or a disabled feature: the next check asks."""
        if self._cache is not None:
            try:
                await self._record_usage()  # the answers before it first
            finally:
                await self._cache.usage_refused(company_id, feature_code)

    async def _usage_acknowledged(self, dest: str, event: UsageEvent, outcome: object) -> None:
        """What became of an event: the quota ledger of ``billing.reserve`` learns it."""
        flow = self._reservation_flows.get(dest)
        if flow is not None and event.company_id is not None:
            from .._ledger.registry import answer_of

            answer = answer_of(outcome)
            await flow.answered(event.company_id, event.feature_code, event.idempotency_key, answer)

    async def _usage_settled(self, dest: str) -> None:
        """The buffer settled a batch: the cache records its usage, and the quota ledger
        sends what it deferred (commits, answers), one round trip for the batch."""
        try:
            await self._record_usage()
        finally:
            flow = self._reservation_flows.get(dest)
            if flow is not None:
                await flow.ledger.drain()

    async def _usage_tracked(
        self, company_id: str, feature_code: str, key: str, outcome: object
    ) -> None:
        """The answer of a direct ``billing.track_usage``: a ledger of ``billing.reserve``
        (if one was made) learns the server's usage, or asks again after a refusal."""
        dest = product_key(str(self._config.base_url), self._config.api_key)
        flow = self._reservation_flows.get(dest)
        if flow is not None:
            from .._ledger.registry import answer_of

            await flow.answered(company_id, feature_code, key, answer_of(outcome))

    def _reservations(self) -> AsyncReservations:
        """The ``billing.reserve`` flow of this client's product (made on first use)."""
        dest = product_key(str(self._config.base_url), self._config.api_key)
        flow: AsyncReservations = self._reservation_flows.get_or_make(dest, self._make_reservations)
        return flow

    def _make_reservations(self, options: ReservationOptions, dest: str) -> AsyncReservations:
        """A ledger in the cache's Redis when it has one (else in the process), the server's
        figures from ``features.check`` and metering through the usage buffer."""
        from ._ledger import AsyncLedger
        from ._reservation import AsyncReservations

        redis = self._cache.redis if self._cache is not None else None
        ledger = AsyncLedger.create(options, dest, redis)
        billing = self.billing

        async def figures(company_id: str, feature_code: str) -> FeatureAccess:
            payload = {"companyId": company_id, "featureCode": feature_code}
            return await self._call("features.check", payload, FeatureAccess.model_validate)

        async def meter(reservation: ReservationCore, quantity: int) -> None:
            await billing.track_usage_later(
                company_id=reservation.company_id,
                feature_code=reservation.feature_code,
                quantity=quantity,
                idempotency_key=reservation.idempotency_key,
                metadata=reservation.metadata,
            )

        url = f"{self._config.base_url}billing.reserve"
        # Closing: what the ledger deferred reaches Redis before the cache closes its Redis.
        self._on_close(ledger.drain)
        return AsyncReservations(ledger, figures=figures, meter=meter, url=url)

    async def __aenter__(self: _C) -> _C:
        await super().__aenter__()
        if self._usage_buffers.spooled():
            self.usage_buffer.resume()  # now a worker can start (trio: in our task group)
        return self

    async def onboard(
        self,
        *,
        external_org_id: str,
        label: str,
        hints: Hints | HintsDict | NotGiven | None = NOT_GIVEN,
        tier_code: str | NotGiven | None = NOT_GIVEN,
        checkout_session_id: str | NotGiven | None = NOT_GIVEN,
        stripe_subscription_id: str | NotGiven | None = NOT_GIVEN,
        stripe_customer_id: str | NotGiven | None = NOT_GIVEN,
        contact_email: str | NotGiven | None = NOT_GIVEN,
        contact_name: str | NotGiven | None = NOT_GIVEN,
        created_at: datetime | str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> OnboardResult:
        """Onboard a customer in one call (procedure ``onboard``).

        Smart-links (or creates) the company and links your org id, then, when given: claims
        the Stripe checkout session, links the Stripe subscription, applies ``tier_code``
        and adds the contact. All of it or nothing. With a cache, the company's entries and
        the org's mapping are dropped before it returns.

        Example::

            result = await client.onboard(
                external_org_id="org_abc123",
                label="My Product",
                hints={"company_name": "Acme Inc", "domain": "acme.com"},
                tier_code="free",
            )
            print(result.company_id, result.link_status)
        """
        payload = compact(
            {
                "externalOrgId": require_str("external_org_id", external_org_id),
                "label": require_str("label", label),
                "hints": hints_input(hints),
                "tierCode": optional_str("tier_code", tier_code),
                "checkoutSessionId": optional_str("checkout_session_id", checkout_session_id),
                "stripeSubscriptionId": optional_str(
                    "stripe_subscription_id", stripe_subscription_id
                ),
                "stripeCustomerId": optional_str("stripe_customer_id", stripe_customer_id),
                "contactEmail": optional_str("contact_email", contact_email),
                "contactName": optional_str("contact_name", contact_name),
                "createdAt": optional_timestamp("created_at", created_at),
            }
        )
        return await self._call_cached(
            "onboard",
            payload,
            OnboardResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncChatarminOSWithRawResponse:
    """``client.with_raw_response``: the client's namespaces and ``onboard``, each method
    returning an :class:`~chatarmin_os.APIResponse` (see :attr:`AsyncChatarminOS.with_raw_response`).
    """

    def __init__(self, client: AsyncChatarminOS) -> None:
        self._client = client
        self.onboard = to_raw_response_wrapper(client.onboard)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    @cached_property
    def companies(self) -> AsyncCompaniesWithRawResponse:
        """``client.companies``, raw."""
        from .resources.companies import AsyncCompaniesWithRawResponse

        return AsyncCompaniesWithRawResponse(self._client.companies)

    @cached_property
    def contacts(self) -> AsyncContactsWithRawResponse:
        """``client.contacts``, raw."""
        from .resources.contacts import AsyncContactsWithRawResponse

        return AsyncContactsWithRawResponse(self._client.contacts)

    @cached_property
    def features(self) -> AsyncFeaturesWithRawResponse:
        """``client.features``, raw."""
        from .resources.features import AsyncFeaturesWithRawResponse

        return AsyncFeaturesWithRawResponse(self._client.features)

    @cached_property
    def billing(self) -> AsyncBillingWithRawResponse:
        """``client.billing``, raw (not ``track_usage_later``: it sends nothing itself)."""
        from .resources.billing import AsyncBillingWithRawResponse

        return AsyncBillingWithRawResponse(self._client.billing)

    @cached_property
    def tiers(self) -> AsyncTiersWithRawResponse:
        """``client.tiers``, raw."""
        from .resources.tiers import AsyncTiersWithRawResponse

        return AsyncTiersWithRawResponse(self._client.tiers)

    @cached_property
    def subscriptions(self) -> AsyncSubscriptionsWithRawResponse:
        """``client.subscriptions``, raw."""
        from .resources.subscriptions import AsyncSubscriptionsWithRawResponse

        return AsyncSubscriptionsWithRawResponse(self._client.subscriptions)

    @cached_property
    def links(self) -> AsyncLinksWithRawResponse:
        """``client.links``, raw."""
        from .resources.links import AsyncLinksWithRawResponse

        return AsyncLinksWithRawResponse(self._client.links)
