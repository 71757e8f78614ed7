"""``client.subscriptions``: the TypeScript SDK's alias of ``tiers.apply``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._models import ApplyTierResult
from ..._types import NOT_GIVEN, NotGiven
from ._resource import AsyncAPIResource
from .tiers import apply_tier_input

__all__ = ["AsyncSubscriptions"]


class AsyncSubscriptions(AsyncAPIResource):
    """Subscriptions: ``create`` applies a tier (the same call as ``tiers.apply``)."""

    async def create(
        self,
        tier_code: str,
        *,
        company_id: str,
        features: Mapping[str, Mapping[str, Any]] | NotGiven | None = NOT_GIVEN,
    ) -> ApplyTierResult:
        """Apply a subscription tier to a company: an alias of ``tiers.apply``."""
        payload = apply_tier_input(tier_code, company_id, features)
        return await self._client._call_cached(
            "tiers.applyTier", payload, ApplyTierResult.model_validate
        )
