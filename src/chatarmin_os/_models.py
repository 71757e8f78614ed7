"""Result models, shared by both clients.

Attributes are snake_case; each is read from its camelCase wire name. Fields a server adds
beyond the contract are kept: read them with ``model.model_extra`` (or as attributes, under
their wire name). Timestamps are parsed to aware ``datetime`` objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, PrivateAttr
from pydantic.alias_generators import to_camel

__all__ = [
    "ApplyTierResult",
    "BaseFee",
    "BaseModel",
    "BillingStatus",
    "BulkUpsertResult",
    "ClaimCheckoutResult",
    "Company",
    "Contact",
    "FeatureAccess",
    "FeatureAccessBase",
    "FeatureAccessDetail",
    "FeatureSource",
    "LinkStatus",
    "LinkSubscriptionResult",
    "MatchedBy",
    "OnboardBillingStatus",
    "OnboardResult",
    "OrgFeatureAccess",
    "ProductLink",
    "Provenance",
    "ResetLinksResult",
    "SmartLinkResult",
    "SmartLinkStatus",
    "StripePrice",
    "Subscription",
    "SubscriptionTier",
    "Suggestion",
    "Tier",
    "TierFeature",
    "TierSummary",
    "UpsertedContact",
    "UsageResult",
]

LinkStatus = Literal["created", "linked", "already_linked"]
"""How ``onboard`` found the company: made anew, matched and linked, or linked before."""

SmartLinkStatus = Literal["already_linked", "linked", "suggestions", "no_match"]
"""The outcome of ``companies.smart_link``."""

MatchedBy = Literal["domain", "name", "email_domain"]
"""Which hint made a smart-link suggestion."""

FeatureSource = Literal["subscription", "manual", "trial", "api"]
"""Where a company's access to a feature came from."""

Provenance = Literal["live", "cache", "stale", "fallback"]
"""Where an answer came from: the server just now, the entitlement cache (fresh), the cache past
its TTL during an outage, or your fallback policy during an outage."""


class BaseModel(pydantic.BaseModel):
    """Base of every result model: snake_case attributes, camelCase on the wire, extras kept."""

    model_config = ConfigDict(
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        protected_namespaces=(),
        # Validators are built on a model's first use, not when the SDK is imported.
        defer_build=True,
    )

    def to_dict(self, *, by_alias: bool = False) -> dict[str, Any]:
        """The model as a plain dict (snake_case keys; wire names with ``by_alias=True``)."""
        return self.model_dump(mode="python", by_alias=by_alias)


class Company(BaseModel):
    """A customer company."""

    id: str
    short_id: str
    name: str
    domain: str | None
    created_at: datetime


class Contact(BaseModel):
    """A person at a company."""

    id: str
    company_id: str
    email: str
    name: str | None
    role: str | None
    is_primary: bool
    avatar_url: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class UpsertedContact(Contact):
    """A contact after ``contacts.create`` / ``bulk_upsert``; ``is_new`` when it was created."""

    is_new: bool


class BulkUpsertResult(BaseModel):
    """The outcome of ``contacts.bulk_upsert``."""

    created: int
    updated: int
    contacts: list[UpsertedContact]


class Suggestion(BaseModel):
    """A company ``smart_link`` thinks may be the one, with its confidence (0–100)."""

    company_id: str
    name: str
    domain: str | None
    confidence: float
    matched_by: MatchedBy


class SmartLinkResult(BaseModel):
    """The outcome of ``companies.smart_link``; ``confidence`` is a percentage (0–100)."""

    status: SmartLinkStatus
    company_id: str | None
    customer_name: str | None
    confidence: float | None
    suggestions: list[Suggestion]


class FeatureAccessBase(BaseModel):
    """What :class:`FeatureAccess` and :class:`FeatureAccessDetail` share: the access figures,
    and where the answer came from.

    ``quantity_limit`` and ``remaining`` are ``None`` when usage is unlimited.

    Frozen: assigning an attribute raises ``pydantic.ValidationError``. The entitlement cache
    hands the same object to every caller it answers (see ``CacheOptions``), so nobody can
    change an answer someone else reads; build a changed copy with
    ``access.model_copy(update={...})``. Equality compares the figures, not the provenance.
    """

    model_config = ConfigDict(frozen=True)

    feature_code: str
    is_enabled: bool
    can_use: bool
    has_quantity: bool
    current_usage: int
    quantity_limit: int | None
    included_quantity: int | None
    remaining: int | None

    # Not a field: never read from nor sent on the wire (a server may add its own "source").
    _provenance: Provenance = PrivateAttr(default="live")

    @property
    def provenance(self) -> Provenance:
        """Where this answer came from: ``"live"`` (the server, just now), ``"cache"`` (the
        entitlement cache, fresh), ``"stale"`` (the cache, past its TTL, while ChatarminOS
        could not be reached) or ``"fallback"`` (your fallback policy, while it could not be
        reached). Always ``"live"`` without a cache. Not part of the model's data: not in
        ``model_dump()``, not compared by ``==``."""
        return self._provenance

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureAccessBase):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )


class FeatureAccess(FeatureAccessBase):
    """Whether a company may use a feature now, and how much it has left.

    ``quantity_limit`` and ``remaining`` are ``None`` when usage is unlimited. ``source``
    says where the answer came from (``"live"``, ``"cache"``, ``"stale"``, ``"fallback"``;
    see :attr:`FeatureAccessBase.provenance`); it is not a wire field, and a ``source`` a
    server adds to the answer is kept in ``model_extra``.
    """

    @property
    def source(self) -> Provenance:
        """Where this answer came from: ``"live"``, ``"cache"``, ``"stale"`` or ``"fallback"``
        (the same as :attr:`provenance`)."""
        return self._provenance


class FeatureAccessDetail(FeatureAccessBase):
    """The access figures of :class:`FeatureAccess` plus the feature's name, config, source and
    expiry.

    Here ``source`` is the wire field: where the company's access came from
    (``"subscription"``, ``"manual"``, ``"trial"``, ``"api"``). Where the answer came from
    (live, cache, stale) is :attr:`provenance`. Not a subclass of :class:`FeatureAccess`
    (their ``source`` attributes mean different things); both derive from
    :class:`FeatureAccessBase`.
    """

    feature_name: str
    config_values: dict[str, Any]
    source: FeatureSource
    valid_until: datetime | None


class OrgFeatureAccess(BaseModel):
    """Every feature of the company linked to an external org id.

    ``provenance`` says where the answer came from (``"live"``, ``"cache"``, ``"stale"``),
    as for :class:`FeatureAccessDetail`.
    """

    company_id: str
    features: list[FeatureAccessDetail]

    _provenance: Provenance = PrivateAttr(default="live")

    @property
    def provenance(self) -> Provenance:
        """Where this answer came from: ``"live"``, ``"cache"`` or ``"stale"`` (not a field)."""
        return self._provenance


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


class ProductLink(BaseModel):
    """A link between your product's org id and a company."""

    id: str
    company_id: str
    external_org_id: str
    label: str | None
    external_user_id: str | None
    created_at: datetime


class ResetLinksResult(BaseModel):
    """The outcome of ``links.reset``."""

    links_deleted: int
    contacts_deleted: int
    mrr_reset: bool


class OnboardBillingStatus(BaseModel):
    """What ``onboard`` did about billing."""

    claimed: bool
    linked: bool
    tier_applied: bool
    subscription_id: str | None


class OnboardResult(BaseModel):
    """The outcome of ``onboard``; ``billing_status`` is ``None`` when no billing was asked."""

    company_id: str
    company_name: str
    link_status: LinkStatus
    billing_status: OnboardBillingStatus | None
