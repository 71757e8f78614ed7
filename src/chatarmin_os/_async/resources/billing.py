"""``client.billing``: usage tracking, Stripe checkout and subscriptions, billing status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._ids import new_idempotency_key
from ..._models import BillingStatus, ClaimCheckoutResult, LinkSubscriptionResult, UsageResult
from ..._types import NOT_GIVEN, NotGiven
from ..._validate import compact, free_map, optional_str, positive_int, require_str
from ._resource import AsyncAPIResource

__all__ = ["AsyncBilling"]


class AsyncBilling(AsyncAPIResource):
    """Metered usage and Stripe billing."""

    async def track_usage(
        self,
        *,
        company_id: str,
        feature_code: str,
        quantity: int,
        idempotency_key: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
    ) -> UsageResult:
        """Count usage of a metered feature (``billing.trackUsage``).

        Every call carries an idempotency key: yours, or a fresh uuid4 when you give none.
        The same key is sent on every retry of the call, so a retried call is never counted
        twice, and that is also why this mutation may be retried after a timeout. Pass your
        own key (e.g. ``f"request_{request_id}"``) to make your own retries safe too.

        Raises :class:`~chatarmin_os.PreconditionFailedError` when the usage would pass the
        limit (nothing is counted) and :class:`~chatarmin_os.PermissionDeniedError` when the
        feature is not enabled.
        """
        key = optional_str("idempotency_key", idempotency_key)
        payload = compact(
            {
                "companyId": require_str("company_id", company_id),
                "featureCode": require_str("feature_code", feature_code),
                "quantity": positive_int("quantity", quantity),
                "idempotencyKey": new_idempotency_key() if isinstance(key, NotGiven) else key,
                "metadata": free_map("metadata", metadata),
            }
        )
        return await self._client._call(
            "billing.trackUsage", payload, UsageResult.model_validate, idempotent=True
        )

    async def claim_checkout(
        self, *, company_id: str, checkout_session_id: str
    ) -> ClaimCheckoutResult:
        """Claim the subscription of a completed Stripe Checkout Session (``billing.claimCheckout``).

        Claiming twice is safe: the second answer has ``already_claimed=True``.
        """
        payload = {
            "companyId": require_str("company_id", company_id),
            "checkoutSessionId": require_str("checkout_session_id", checkout_session_id),
        }
        return await self._client._call(
            "billing.claimCheckout", payload, ClaimCheckoutResult.model_validate
        )

    async def link_subscription(
        self,
        *,
        company_id: str,
        stripe_subscription_id: str,
        stripe_customer_id: str | NotGiven | None = NOT_GIVEN,
        tier_code: str | NotGiven | None = NOT_GIVEN,
        display_name: str | NotGiven | None = NOT_GIVEN,
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
        return await self._client._call(
            "billing.linkSubscription", payload, LinkSubscriptionResult.model_validate
        )

    async def get_status(self, company_id: str) -> BillingStatus:
        """A company's billing overview (``billing.getStatus``)."""
        payload = {"companyId": require_str("company_id", company_id)}
        return await self._client._call("billing.getStatus", payload, BillingStatus.model_validate)
