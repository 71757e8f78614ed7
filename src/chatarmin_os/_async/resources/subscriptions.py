"""``client.subscriptions``: the TypeScript SDK's alias of ``tiers.apply``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._client.options import request_options
from ..._models import ApplyTierResult
from ..._types import NOT_GIVEN, NotGiven, Timeout
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource
from .tiers import apply_tier_input

__all__ = ["AsyncSubscriptions", "AsyncSubscriptionsWithRawResponse"]


class AsyncSubscriptions(AsyncAPIResource):
    """Subscriptions: ``create`` applies a tier (the same call as ``tiers.apply``)."""

    async def create(
        self,
        tier_code: str,
        *,
        company_id: str,
        features: Mapping[str, Mapping[str, Any]] | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ApplyTierResult:
        """Apply a subscription tier to a company: an alias of ``tiers.apply``."""
        payload = apply_tier_input(tier_code, company_id, features)
        return await self._client._call_cached(
            "tiers.applyTier",
            payload,
            ApplyTierResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncSubscriptionsWithRawResponse:
    """``client.with_raw_response.subscriptions``: the methods of :class:`AsyncSubscriptions`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, subscriptions: AsyncSubscriptions) -> None:
        self.create = to_raw_response_wrapper(subscriptions.create)
