"""``client.billing``: usage tracking, Stripe checkout and subscriptions, billing status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpx

from ..._client.options import request_options
from ..._concurrency import awaitable_context
from ..._exceptions import (
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from ..._models import BillingStatus, ClaimCheckoutResult, LinkSubscriptionResult, UsageResult
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import compact, optional_str, require_str, resolved_payload, show, usage_payload
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource
from .companies import AsyncCompanies

if TYPE_CHECKING:
    from .._reservation import AsyncReservation, AsyncReservations
    from .._usage_buffer import AsyncUsageBuffer

__all__ = ["AsyncBilling", "AsyncBillingWithRawResponse", "unlinked_org"]


def unlinked_org(external_org_id: str) -> NotFoundError:
    """The error of ``track_usage(external_org_id=...)`` for an org no company is linked to.

    The lookup (``companies.getByProductLink``, its ``path``) found no company and the usage
    was not sent, so there is no error answer: the error carries a stand-in 404 response
    (without a request, so without the API key) and the code ``NOT_FOUND``.
    """
    message = (
        f"No company is linked to external_org_id {show(external_org_id)}; nothing was tracked."
    )
    return NotFoundError(
        message, response=httpx.Response(404), path="companies.getByProductLink", code="NOT_FOUND"
    )


class _BuffersUsage(Protocol):
    """A client with a usage buffer (the client's ``usage_buffer`` property) and the flow of
    ``billing.reserve``."""

    usage_buffer: AsyncUsageBuffer

    def _check_open(self) -> None: ...

    def _reservations(self) -> AsyncReservations: ...

    async def _usage_tracked(
        self, company_id: str, feature_code: str, key: str, outcome: object
    ) -> None: ...


class AsyncBilling(AsyncAPIResource):
    """Metered usage and Stripe billing."""

    async def track_usage(
        self,
        *,
        feature_code: str,
        quantity: int,
        company_id: str | NotGiven | None = NOT_GIVEN,
        external_org_id: str | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> UsageResult:
        """Count usage of a metered feature (``billing.trackUsage``).

        Give exactly one of ``company_id`` / ``external_org_id``. An org id is resolved
        through ``companies.get_by_product_link`` (cached with the client's ``cache=``, so
        after a gate's ``check_by_external_org_id`` this is one round trip); an org no
        company is linked to raises :class:`~chatarmin_os.NotFoundError` and sends nothing.

        Every call carries an idempotency key: yours, or a fresh UUIDv7 (time-ordered) when you give none.
        The same key is sent on every retry of the call, so a retried call is never counted
        twice, and that is also why this mutation may be retried after a timeout. Pass your
        own key (e.g. ``f"request_{request_id}"``) to make your own retries safe too.

        Raises :class:`~chatarmin_os.PreconditionFailedError` when the usage would pass the
        limit (nothing is counted) and :class:`~chatarmin_os.PermissionDeniedError` when the
        feature is not enabled. With a cache, the answer updates the company's cached
        entries for the feature (exact usage and remaining without a request); those two
        errors expire them.
        """
        payload = usage_payload(
            company_id=company_id,
            external_org_id=external_org_id,
            feature_code=feature_code,
            quantity=quantity,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
        org = payload.get("externalOrgId")
        if org is not None:
            linked = await AsyncCompanies(self._client).get_by_product_link(
                external_org_id=org,
                extra_headers=extra_headers,
                extra_query=extra_query,
                timeout=timeout,
            )
            if linked is None:
                raise unlinked_org(org)
            payload = resolved_payload(payload, linked.id)
        client = cast("_BuffersUsage", self._client)
        where = (payload["companyId"], payload["featureCode"], payload["idempotencyKey"])
        try:
            result = await self._client._call_cached(
                "billing.trackUsage",
                payload,
                UsageResult.model_validate,
                idempotent=True,
                options=request_options(extra_headers, extra_query, timeout),
            )
        except (PreconditionFailedError, PermissionDeniedError) as error:
            await client._usage_tracked(*where, error)  # a reserve ledger asks again
            raise
        await client._usage_tracked(*where, result)  # a reserve ledger learns the usage
        return result

    async def track_usage_later(
        self,
        *,
        company_id: str | NotGiven | None = NOT_GIVEN,
        external_org_id: str | NotGiven | None = NOT_GIVEN,
        feature_code: str,
        quantity: int,
        idempotency_key: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
    ) -> str:
        """Count usage in the background; return the event's idempotency key at once.

        Checks the arguments as :meth:`track_usage` does (bad input raises
        :class:`~chatarmin_os.InvalidInputError` here), fixes the idempotency key (yours, or
        a fresh UUIDv7) and hands the event to the client's usage buffer
        (``usage_buffer=UsageBufferOptions(...)``), which sends it with others in tRPC
        batches and retries it with the same key until ChatarminOS answered, so it is
        counted exactly once. Give ``company_id`` or ``external_org_id`` (the org is looked
        up when the event is sent). Waits only when the buffer is full and its ``when_full``
        is ``"block"``, and then only for room. An event ChatarminOS refuses (a usage limit,
        a feature not enabled, an unlinked org) goes to the buffer's ``on_error``;
        ``await client.flush()`` waits until everything enqueued was answered.

        Example::

            key = await client.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=1
            )
        """
        payload = usage_payload(
            company_id=company_id,
            external_org_id=external_org_id,
            feature_code=feature_code,
            quantity=quantity,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
        client = cast("_BuffersUsage", self._client)
        client._check_open()
        return await client.usage_buffer.put(payload)

    @awaitable_context
    async def reserve(
        self,
        *,
        feature_code: str,
        quantity: int = 1,
        company_id: str | NotGiven | None = NOT_GIVEN,
        external_org_id: str | NotGiven | None = NOT_GIVEN,
        idempotency_key: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
    ) -> AsyncReservation:
        """Hold ``quantity`` of a metered feature's limit before doing the work; meter it after.

        Returns an :class:`~chatarmin_os.AsyncReservation`: ``await reservation.commit()``
        meters what was used (``quantity`` or less) through the usage buffer, exactly once
        with :attr:`~chatarmin_os.AsyncReservation.idempotency_key`; ``await
        reservation.release()`` gives the hold back. As ``async with
        client.billing.reserve(...) as reservation:`` it commits on normal exit and releases
        on an exception. A hold neither committed nor released expires after
        ``ReservationOptions.hold_timeout`` (a crashed process frees its quota).

        A hold is admitted only while the usage ChatarminOS reported + what is held + what
        is metered but not yet acknowledged + ``quantity`` stays within the limit, so
        concurrent requests never get more than the plan allows: across the threads and
        tasks of this process, and across every process sharing the cache's Redis when the
        client has ``cache=CacheOptions(redis_url=...)``. The first hold of a company's
        feature asks ChatarminOS (``features.check``); the next ones cost no request.

        Refused before anything is held, with the errors :meth:`track_usage` raises for the
        same reasons (one ``except`` serves both): :class:`~chatarmin_os.PreconditionFailedError`
        (it would pass the limit), :class:`~chatarmin_os.PermissionDeniedError` (not
        enabled), :class:`~chatarmin_os.NotFoundError` (unknown company, org or feature).
        Unlimited features hold nothing (the commit still meters).

        Example::

            async with client.billing.reserve(company_id=cid, feature_code="ai_credit") as r:
                summary = await summarise(text)  # an exception releases the hold
        """
        payload = usage_payload(
            company_id=company_id,
            external_org_id=external_org_id,
            feature_code=feature_code,
            quantity=quantity,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
        client = cast("_BuffersUsage", self._client)
        client._check_open()
        org = payload.get("externalOrgId")
        if org is None:
            company: str = payload["companyId"]
        else:
            linked = await AsyncCompanies(self._client).get_by_product_link(external_org_id=org)
            if linked is None:
                raise unlinked_org(org)
            company = linked.id
        return await client._reservations().reserve(
            company_id=company,
            feature_code=payload["featureCode"],
            quantity=payload["quantity"],
            idempotency_key=payload["idempotencyKey"],
            metadata=payload.get("metadata"),
            external_org_id=org,
        )

    async def claim_checkout(
        self,
        *,
        company_id: str,
        checkout_session_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ClaimCheckoutResult:
        """Claim the subscription of a completed Stripe Checkout Session (``billing.claimCheckout``).

        Claiming twice is safe: the second answer has ``already_claimed=True``.
        """
        payload = {
            "companyId": require_str("company_id", company_id),
            "checkoutSessionId": require_str("checkout_session_id", checkout_session_id),
        }
        return await self._client._call_cached(
            "billing.claimCheckout",
            payload,
            ClaimCheckoutResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def link_subscription(
        self,
        *,
        company_id: str,
        stripe_subscription_id: str,
        stripe_customer_id: str | NotGiven | None = NOT_GIVEN,
        tier_code: str | NotGiven | None = NOT_GIVEN,
        display_name: str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> LinkSubscriptionResult:
        """Link a Stripe subscription you created to a company (``billing.linkSubscription``).

        With ``tier_code`` the tier's features are applied.
        """
        payload = compact(
            {
                "companyId": require_str("company_id", company_id),
                "stripeSubscriptionId": require_str(
                    "stripe_subscription_id", stripe_subscription_id
                ),
                "stripeCustomerId": optional_str("stripe_customer_id", stripe_customer_id),
                "tierCode": optional_str("tier_code", tier_code),
                "displayName": optional_str("display_name", display_name),
            }
        )
        return await self._client._call_cached(
            "billing.linkSubscription",
            payload,
            LinkSubscriptionResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def get_status(
        self,
        company_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> BillingStatus:
        """A company's billing overview (``billing.getStatus``)."""
        payload = {"companyId": require_str("company_id", company_id)}
        return await self._client._call(
            "billing.getStatus",
            payload,
            BillingStatus.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncBillingWithRawResponse:
    """``client.with_raw_response.billing``: the methods of :class:`AsyncBilling`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, billing: AsyncBilling) -> None:
        self.track_usage = to_raw_response_wrapper(billing.track_usage)
        self.claim_checkout = to_raw_response_wrapper(billing.claim_checkout)
        self.link_subscription = to_raw_response_wrapper(billing.link_subscription)
        self.get_status = to_raw_response_wrapper(billing.get_status)
