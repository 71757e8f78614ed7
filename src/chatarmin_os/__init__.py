"""ChatarminOS Python SDK: customers, tiers, feature entitlements, usage and Stripe billing.

``AsyncChatarminOS`` for ``async`` code (asyncio or trio), ``ChatarminOS`` for blocking
code; the two have the same API.

Importing this package loads nothing but the version: each public name is imported on
first use (PEP 562), so ``import chatarmin_os`` stays cheap for apps and test runs that
never use it. The local ChatarminOS lives in ``chatarmin_os.local``.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from ._async.client import AsyncChatarminOS
    from ._base import DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
    from ._exceptions import (
        APIConnectionError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ChatarminOSError,
        ConflictError,
        InternalServerError,
        InvalidInputError,
        NotFoundError,
        PermissionDeniedError,
        PreconditionFailedError,
        RateLimitError,
        UnprocessableEntityError,
    )
    from ._inputs import (
        ApplyTierInput,
        ChatarminOSConfig,
        ClaimCheckoutInput,
        ContactInput,
        ContactInputDict,
        CreateCompanyInput,
        FeatureCheckInput,
        FeatureSetAccessInput,
        Hints,
        HintsDict,
        LinkSubscriptionInput,
        OnboardInput,
        SmartLinkInput,
        TrackUsageInput,
    )
    from ._models import (
        ApplyTierResult,
        BaseFee,
        BaseModel,
        BillingStatus,
        BulkUpsertResult,
        ClaimCheckoutResult,
        Company,
        Contact,
        FeatureAccess,
        FeatureAccessDetail,
        FeatureSource,
        LinkStatus,
        LinkSubscriptionResult,
        MatchedBy,
        OnboardBillingStatus,
        OnboardResult,
        OrgFeatureAccess,
        ProductLink,
        ResetLinksResult,
        SmartLinkResult,
        SmartLinkStatus,
        StripePrice,
        Subscription,
        SubscriptionTier,
        Suggestion,
        Tier,
        TierFeature,
        TierSummary,
        UpsertedContact,
        UsageResult,
    )
    from ._sync.client import ChatarminOS
    from ._types import NOT_GIVEN, NotGiven, Timeout, Transformer


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "ApplyTierInput",
    "ApplyTierResult",
    "AsyncChatarminOS",
    "AuthenticationError",
    "BadRequestError",
    "BaseFee",
    "BaseModel",
    "BillingStatus",
    "BulkUpsertResult",
    "ChatarminOS",
    "ChatarminOSConfig",
    "ChatarminOSError",
    "ClaimCheckoutInput",
    "ClaimCheckoutResult",
    "Company",
    "ConflictError",
    "Contact",
    "ContactInput",
    "ContactInputDict",
    "CreateCompanyInput",
    "FeatureAccess",
    "FeatureAccessDetail",
    "FeatureCheckInput",
    "FeatureSetAccessInput",
    "FeatureSource",
    "Hints",
    "HintsDict",
    "InternalServerError",
    "InvalidInputError",
    "LinkStatus",
    "LinkSubscriptionInput",
    "LinkSubscriptionResult",
    "MatchedBy",
    "NotFoundError",
    "NotGiven",
    "OnboardBillingStatus",
    "OnboardInput",
    "OnboardResult",
    "OrgFeatureAccess",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProductLink",
    "RateLimitError",
    "ResetLinksResult",
    "SmartLinkInput",
    "SmartLinkResult",
    "SmartLinkStatus",
    "StripePrice",
    "Subscription",
    "SubscriptionTier",
    "Suggestion",
    "Tier",
    "TierFeature",
    "TierSummary",
    "Timeout",
    "TrackUsageInput",
    "Transformer",
    "UnprocessableEntityError",
    "UpsertedContact",
    "UsageResult",
    "__version__",
]

# Where each public name lives; imported on first access.
_LAZY: dict[str, str] = {
    "AsyncChatarminOS": "._async.client",
    "DEFAULT_BASE_URL": "._base",
    "DEFAULT_MAX_RETRIES": "._base",
    "DEFAULT_TIMEOUT": "._base",
    "APIConnectionError": "._exceptions",
    "APIResponseValidationError": "._exceptions",
    "APIStatusError": "._exceptions",
    "APITimeoutError": "._exceptions",
    "AuthenticationError": "._exceptions",
    "BadRequestError": "._exceptions",
    "ChatarminOSError": "._exceptions",
    "ConflictError": "._exceptions",
    "InternalServerError": "._exceptions",
    "InvalidInputError": "._exceptions",
    "NotFoundError": "._exceptions",
    "PermissionDeniedError": "._exceptions",
    "PreconditionFailedError": "._exceptions",
    "RateLimitError": "._exceptions",
    "UnprocessableEntityError": "._exceptions",
    "ApplyTierInput": "._inputs",
    "ChatarminOSConfig": "._inputs",
    "ClaimCheckoutInput": "._inputs",
    "ContactInput": "._inputs",
    "ContactInputDict": "._inputs",
    "CreateCompanyInput": "._inputs",
    "FeatureCheckInput": "._inputs",
    "FeatureSetAccessInput": "._inputs",
    "Hints": "._inputs",
    "HintsDict": "._inputs",
    "LinkSubscriptionInput": "._inputs",
    "OnboardInput": "._inputs",
    "SmartLinkInput": "._inputs",
    "TrackUsageInput": "._inputs",
    "ApplyTierResult": "._models",
    "BaseFee": "._models",
    "BaseModel": "._models",
    "BillingStatus": "._models",
    "BulkUpsertResult": "._models",
    "ClaimCheckoutResult": "._models",
    "Company": "._models",
    "Contact": "._models",
    "FeatureAccess": "._models",
    "FeatureAccessDetail": "._models",
    "FeatureSource": "._models",
    "LinkStatus": "._models",
    "LinkSubscriptionResult": "._models",
    "MatchedBy": "._models",
    "OnboardBillingStatus": "._models",
    "OnboardResult": "._models",
    "OrgFeatureAccess": "._models",
    "ProductLink": "._models",
    "ResetLinksResult": "._models",
    "SmartLinkResult": "._models",
    "SmartLinkStatus": "._models",
    "StripePrice": "._models",
    "Subscription": "._models",
    "SubscriptionTier": "._models",
    "Suggestion": "._models",
    "Tier": "._models",
    "TierFeature": "._models",
    "TierSummary": "._models",
    "UpsertedContact": "._models",
    "UsageResult": "._models",
    "ChatarminOS": "._sync.client",
    "NOT_GIVEN": "._types",
    "NotGiven": "._types",
    "Timeout": "._types",
    "Transformer": "._types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
