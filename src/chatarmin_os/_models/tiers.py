"""Tiers: ``tiers.*`` / ``subscriptions.*`` results."""

from __future__ import annotations

from typing import Any

from ._base import BaseModel


class TierSummary(BaseModel):
    """A tier as ``tiers.list`` gives it."""

    code: str
    """The tier's code (e.g. ``"pro"``): what ``tiers.get``, ``tiers.apply`` and
    ``tier_code=`` take."""
    name: str
    """The tier's display name (e.g. ``"Pro"``)."""
    description: str | None
    """A description of the tier; ``None`` when it has none."""


class StripePrice(BaseModel):
    """A Stripe price; ``unit_amount`` in cents."""

    price_id: str
    """Stripe's id of the price (``"price_..."``)."""
    unit_amount: int
    """The amount per interval in the currency's smallest unit (cents: ``4900`` is 49.00)."""
    currency: str
    """The ISO 4217 currency code, lower case (e.g. ``"eur"``)."""
    interval: str
    """How often it is charged: ``"day"``, ``"week"``, ``"month"`` or ``"year"``."""


class BaseFee(BaseModel):
    """A tier's base fee."""

    stripe: StripePrice
    """The Stripe price of the base fee."""


class TierFeature(BaseModel):
    """A feature a tier grants, with its configuration."""

    code: str
    """The feature's code (e.g. ``"ai_credit"``)."""
    name: str
    """The feature's display name."""
    config_values: dict[str, Any]
    """The settings the tier gives the feature, keys as set (not renamed); ``{}`` when
    none."""


class Tier(TierSummary):
    """A tier with its base fee, features and every Stripe price id (base fee first)."""

    base_fee: BaseFee | None
    """The tier's base fee; ``None`` when it has none (e.g. a free tier)."""
    features: list[TierFeature]
    """The features the tier grants."""
    stripe_price_ids: list[str]
    """Every Stripe price id of the tier, the base fee's first, then the features': the
    items of a Stripe checkout or subscription for the tier."""


class ApplyTierResult(BaseModel):
    """The outcome of ``tiers.apply`` / ``subscriptions.create``."""

    company_id: str
    """The id of the company the tier was applied to."""
    tier_code: str
    """The code of the tier applied."""
    features_applied: int
    """How many of the tier's features were set on the company."""
