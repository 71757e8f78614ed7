"""Result models, shared by both clients.

Attributes are snake_case; each is read from its camelCase wire name. Fields a server adds
beyond the contract are kept: read them with ``model.model_extra`` (or as attributes, under
their wire name). Timestamps are parsed to aware ``datetime`` objects.

The models live in one module per namespace (``features.py``, ``billing.py``, ...) and are
imported on first use (PEP 562): a client that only checks features never builds the
billing or tier models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._base import BaseModel, FeatureSource, LinkStatus, MatchedBy, Provenance, SmartLinkStatus
    from .billing import (
        BillingStatus,
        ClaimCheckoutResult,
        LinkSubscriptionResult,
        Subscription,
        SubscriptionTier,
        UsageResult,
    )
    from .companies import Company, SmartLinkResult, Suggestion
    from .contacts import BulkUpsertResult, Contact, UpsertedContact
    from .features import FeatureAccess, FeatureAccessBase, FeatureAccessDetail, OrgFeatureAccess
    from .links import ProductLink, ResetLinksResult
    from .onboard import OnboardBillingStatus, OnboardResult
    from .tiers import ApplyTierResult, BaseFee, StripePrice, Tier, TierFeature, TierSummary

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

_LAZY: dict[str, str] = {
    "ApplyTierResult": ".tiers",
    "BaseFee": ".tiers",
    "BaseModel": "._base",
    "BillingStatus": ".billing",
    "BulkUpsertResult": ".contacts",
    "ClaimCheckoutResult": ".billing",
    "Company": ".companies",
    "Contact": ".contacts",
    "FeatureAccess": ".features",
    "FeatureAccessBase": ".features",
    "FeatureAccessDetail": ".features",
    "FeatureSource": "._base",
    "LinkStatus": "._base",
    "LinkSubscriptionResult": ".billing",
    "MatchedBy": "._base",
    "OnboardBillingStatus": ".onboard",
    "OnboardResult": ".onboard",
    "OrgFeatureAccess": ".features",
    "ProductLink": ".links",
    "Provenance": "._base",
    "ResetLinksResult": ".links",
    "SmartLinkResult": ".companies",
    "SmartLinkStatus": "._base",
    "StripePrice": ".tiers",
    "Subscription": ".billing",
    "SubscriptionTier": ".billing",
    "Suggestion": ".companies",
    "Tier": ".tiers",
    "TierFeature": ".tiers",
    "TierSummary": ".tiers",
    "UpsertedContact": ".contacts",
    "UsageResult": ".billing",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
