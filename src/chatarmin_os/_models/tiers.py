"""Tiers: ``tiers.*`` / ``subscriptions.*`` results."""

from __future__ import annotations

from typing import Any

from ._base import BaseModel


class TierSummary(BaseModel):
    """A tier as ``tiers.list`` gives it."""

    code: str
    name: str
    description: str | None


class StripePrice(BaseModel):
    """A Stripe price; ``unit_amount`` in cents."""

    price_id: str
    unit_amount: int
    currency: str
    interval: str


class BaseFee(BaseModel):
    """A tier's base fee."""

    stripe: StripePrice


class TierFeature(BaseModel):
    """A feature a tier grants, with its configuration."""

    code: str
    name: str
    config_values: dict[str, Any]


class Tier(TierSummary):
    """A tier with its base fee, features and every Stripe price id (base fee first)."""

    base_fee: BaseFee | None
    features: list[TierFeature]
    stripe_price_ids: list[str]


class ApplyTierResult(BaseModel):
    """The outcome of ``tiers.apply`` / ``subscriptions.create``."""

    company_id: str
    tier_code: str
    features_applied: int
