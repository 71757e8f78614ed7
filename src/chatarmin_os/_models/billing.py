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
    current_usage: int
    quantity_limit: int | None
    included_quantity: int | None
    remaining: int | None
    billable_quantity: int
    is_at_limit: bool
    duplicate: bool = False


class ClaimCheckoutResult(BaseModel):
    """The outcome of ``billing.claim_checkout``."""

    subscription_id: str
    already_claimed: bool
    tier_code: str | None
    features_applied: int


class LinkSubscriptionResult(BaseModel):
    """The outcome of ``billing.link_subscription``."""

    subscription_id: str
    already_linked: bool
    features_applied: int


class SubscriptionTier(BaseModel):
    """The tier a subscription is on."""

    code: str
    name: str


class Subscription(BaseModel):
    """An active subscription of a company."""

    id: str
    stripe_subscription_id: str | None
    status: str
    display_name: str | None
    tier: SubscriptionTier | None
    current_period_end: datetime | None


class BillingStatus(BaseModel):
    """A company's billing overview."""

    company_id: str
    has_billing_profile: bool
    active_subscriptions: list[Subscription]
    enabled_features_count: int
