"""``client.tiers``: subscription tiers and applying them to a company."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._client.options import request_options
from ..._exceptions import InvalidInputError
from ..._models import ApplyTierResult, Tier, TierSummary
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import compact, free_map, require_str, show
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource, list_of

__all__ = ["AsyncTiers", "AsyncTiersWithRawResponse", "apply_tier_input"]

_list_tiers = list_of(TierSummary)


def apply_tier_input(
    tier_code: str, company_id: str, features: Mapping[str, Mapping[str, Any]] | NotGiven | None
) -> dict[str, Any]:
    """The input of ``tiers.applyTier``.

    ``features`` maps feature codes to override maps; each override map is a free-form map
    (keys sent untouched, the rules of ``metadata``: string keys at every level, JSON values).
    """
    overrides: dict[str, dict[str, Any]] | NotGiven = NOT_GIVEN
    if features is not None and not isinstance(features, NotGiven):
        if not isinstance(features, Mapping):
            raise InvalidInputError(
                "features",
                f"must be a dict of feature code to overrides, got {type(features).__name__}",
            )
        overrides = {}
        for code, values in features.items():
            require_str("features key", code)
            name = f"features[{show(code)}]"
            if not isinstance(values, Mapping):
                raise InvalidInputError(name, f"must be a dict, got {type(values).__name__}")
            checked = free_map(name, values)
            assert not isinstance(checked, NotGiven)
            overrides[code] = checked
    return compact(
        {
            "tierCode": require_str("tier_code", tier_code),
            "companyId": require_str("company_id", company_id),
            "features": overrides,
        }
    )


class AsyncTiers(AsyncAPIResource):
    """The tiers of your product."""

    async def list(
        self,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[TierSummary]:
        """Every tier (``tiers.list``)."""
        result: list[TierSummary] = await self._client._call(
            "tiers.list",
            None,
            _list_tiers,
            options=request_options(extra_headers, extra_query, timeout),
        )
        return result

    async def get(
        self,
        tier_code: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Tier:
        """A tier with its base fee, features and Stripe price ids (``tiers.get``)."""
        payload = {"tierCode": require_str("tier_code", tier_code)}
        return await self._client._call(
            "tiers.get",
            payload,
            Tier.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def apply(
        self,
        tier_code: str,
        *,
        company_id: str,
        features: Mapping[str, Mapping[str, Any]] | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ApplyTierResult:
        """Apply a tier's features to a company, without Stripe (procedure ``tiers.applyTier``).

        ``features`` overrides per feature code: ``included_quantity``, ``max_quantity``
        (the limit) and any config key, e.g. ``{"ai_credit": {"included_quantity": 100}}``.
        """
        payload = apply_tier_input(tier_code, company_id, features)
        return await self._client._call_cached(
            "tiers.applyTier",
            payload,
            ApplyTierResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncTiersWithRawResponse:
    """``client.with_raw_response.tiers``: the methods of :class:`AsyncTiers`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, tiers: AsyncTiers) -> None:
        self.list = to_raw_response_wrapper(tiers.list)
        self.get = to_raw_response_wrapper(tiers.get)
        self.apply = to_raw_response_wrapper(tiers.apply)
