"""Billing: ``billing.*`` results."""

from __future__ import annotations

from datetime import datetime

from ._base import BaseModel


class UsageResult(BaseModel):
    """Usage after ``billing.track_usage``.

    ``billable_quantity`` is the usage beyond the included quantity; ``duplicate`` is true
    when the idempotency key was seen before (nothing was counted again).
    """

    feature_code: str
    """The metered feature the usage was counted for (e.g. ``"ai_credit"``)."""
    current_usage: int
    """The company's total usage of the feature after this call, in the feature's units."""
    quantity_limit: int | None
    """The most usage allowed; ``None`` means unlimited."""
    included_quantity: int | None
    """The usage included before billing starts; ``None`` means none is included."""
    remaining: int | None
    """``quantity_limit - current_usage``: how much more may be used; ``None`` means unlimited."""
    billable_quantity: int
    """The usage beyond ``included_quantity`` (never below 0): the part that is billed."""
    is_at_limit: bool
    """``True`` when there is a limit and ``current_usage`` has reached it: more usage is
    refused with ``PreconditionFailedError``."""
    duplicate: bool = False
    """``True`` when the idempotency key was used before: nothing was counted again and the
    figures are those of the first call."""


class ClaimCheckoutResult(BaseModel):
    """The outcome of ``billing.claim_checkout``."""

    subscription_id: str
    """The ChatarminOS id of the claimed subscription (not Stripe's ``sub_...`` id)."""
    already_claimed: bool
    """``True`` when the checkout session was claimed before: nothing was applied again."""
    tier_code: str | None
    """The code of the tier bought in the checkout (its features are applied to the company);
    ``None`` when the checkout has no tier."""
    features_applied: int
    """How many of the tier's features this call set on the company (0 when already claimed)."""


class LinkSubscriptionResult(BaseModel):
    """The outcome of ``billing.link_subscription``."""

    subscription_id: str
    """The ChatarminOS id of the linked subscription (not Stripe's ``sub_...`` id)."""
    already_linked: bool
    """``True`` when the Stripe subscription was linked to this company before: nothing was
    applied again."""
    features_applied: int
    """How many tier features this call set on the company (0 without a tier, when already
    linked, or when the subscription is not active or trialing)."""


class SubscriptionTier(BaseModel):
    """The tier a subscription is on."""

    code: str
    """The tier's code (e.g. ``"pro"``)."""
    name: str
    """The tier's display name (e.g. ``"Pro"``)."""


class Subscription(BaseModel):
    """An active subscription of a company."""

    id: str
    """The ChatarminOS id of the subscription."""
    stripe_subscription_id: str | None
    """Stripe's id of the subscription (``"sub_..."``); ``None`` when it has none."""
    status: str
    """Stripe's status of the subscription: ``"active"`` or ``"trialing"`` for the ones
    ``billing.get_status`` lists (others include ``"past_due"`` and ``"canceled"``)."""
    display_name: str | None
    """The name shown for the subscription (e.g. ``"Pro Plan"``; by default the tier's name);
    ``None`` when it has none."""
    tier: SubscriptionTier | None
    """The tier the subscription grants (code and name); ``None`` when it grants none."""
    current_period_end: datetime | None
    """When the current billing period ends (an aware ``datetime``); ``None`` when unknown."""


class BillingStatus(BaseModel):
    """A company's billing overview."""

    company_id: str
    """The company this overview is about."""
    has_billing_profile: bool
    """``True`` when a Stripe customer or any subscription is on record for the company."""
    active_subscriptions: list[Subscription]
    """The company's active subscriptions (status ``"active"`` or ``"trialing"``); empty when
    it has none."""
    enabled_features_count: int
    """How many features are enabled for the company now."""
