"""``client.features``: check and manage feature access."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, overload

from ..._client.options import request_options
from ..._exceptions import ChatarminOSError, InvalidInputError
from ..._inputs import FeatureCheckInput
from ..._models import FeatureAccess, FeatureAccessDetail, FeatureSource, OrgFeatureAccess
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import (
    compact,
    free_map,
    nullable_int,
    optional_bool,
    optional_str,
    require_str,
    show,
    timestamp,
)
from ..._wire import FEATURE_SOURCES
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource, list_of
from .companies import checked_org

__all__ = ["AsyncFeatures", "AsyncFeaturesWithRawResponse"]

_list_details = list_of(FeatureAccessDetail)
_parse_access = FeatureAccess.model_validate


def _checked_check(raw: Mapping[str, Any]) -> dict[str, str]:
    return {
        "companyId": require_str("company_id", raw["companyId"]),
        "featureCode": require_str("feature_code", raw["featureCode"]),
    }


def _checked_company(raw: Mapping[str, Any]) -> dict[str, str]:
    return {"companyId": require_str("company_id", raw["companyId"])}


def _checked_org_check(raw: Mapping[str, Any]) -> dict[str, str]:
    return {
        "externalOrgId": require_str("external_org_id", raw["externalOrgId"]),
        "featureCode": require_str("feature_code", raw["featureCode"]),
    }


def _check_input(name: str, check: Any) -> dict[str, str]:
    if isinstance(check, Mapping):
        unknown = set(check) - {"company_id", "feature_code"}
        if unknown:
            raise InvalidInputError(name, f"unknown key {show(sorted(map(str, unknown))[0])}")
        company_id, feature_code = check.get("company_id"), check.get("feature_code")
    elif isinstance(check, tuple) and len(check) == 2:
        company_id, feature_code = check
    else:
        raise InvalidInputError(
            name, "must be a (company_id, feature_code) tuple or a dict with those keys"
        )
    return {
        "companyId": require_str(f"{name}.company_id", company_id),
        "featureCode": require_str(f"{name}.feature_code", feature_code),
    }


class AsyncFeatures(AsyncAPIResource):
    """Feature entitlements: ``check``, ``list_access``, ``set_access`` and by-org lookups."""

    async def check(
        self,
        *,
        company_id: str,
        feature_code: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> FeatureAccess:
        """Whether a company may use a feature now (``features.check``).

        Example::

            access = await client.features.check(company_id=cid, feature_code="ai_credit")
            if not access.can_use:
                raise PermissionError("Upgrade required")

        With the client's ``cache=``, answered from the cache while fresh (``access.source``
        says ``"cache"``; see the README's "Gating in the hot path").
        """
        return await self._client._call_cached(
            "features.check",
            {"companyId": company_id, "featureCode": feature_code},
            _parse_access,
            _checked_check,
            options=request_options(extra_headers, extra_query, timeout),
        )

    @overload
    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: Literal[False] = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[FeatureAccess]: ...

    @overload
    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: Literal[True],
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[FeatureAccess | ChatarminOSError]: ...

    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[FeatureAccess] | list[FeatureAccess | ChatarminOSError]:
        """Many :meth:`check` calls in tRPC batch requests, results in the order given.

        Each check is ``(company_id, feature_code)`` or a dict with those keys; all are
        checked before anything is sent. They travel in batches of the client's
        :class:`~chatarmin_os.BatchOptions` (the defaults when batching is off), one request
        per ``max_items`` checks, whatever ``batching=`` says. The first failed check raises
        its error, unless ``return_exceptions=True``, which puts each error in its place.
        It always asks the server (the entitlement cache neither answers nor stores these:
        use it for fresh answers, ``check`` for gating).

        Example::

            checks = [(cid, "ai_credit"), (cid, "sso"), (other_cid, "ai_credit")]
            for access in await client.features.check_many(checks):
                print(access.feature_code, access.can_use)
        """
        payloads = [_check_input(f"checks[{i}]", check) for i, check in enumerate(checks)]
        results = await self._client._call_many(
            "features.check",
            payloads,
            FeatureAccess.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )
        if not return_exceptions:
            for result in results:
                if isinstance(result, ChatarminOSError):
                    raise result
        return results

    async def list_access(
        self,
        company_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[FeatureAccessDetail]:
        """Every feature and the company's access to it (``features.listAccess``); cached
        with the client's ``cache=`` (each item's ``provenance`` says where it came from)."""
        return await self._client._call_cached(
            "features.listAccess",
            {"companyId": company_id},
            _list_details,
            check=_checked_company,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def set_access(
        self,
        *,
        feature_code: str,
        company_id: str | NotGiven | None = NOT_GIVEN,
        external_org_id: str | NotGiven | None = NOT_GIVEN,
        is_enabled: bool | NotGiven | None = NOT_GIVEN,
        quantity_limit: int | NotGiven | None = NOT_GIVEN,
        included_quantity: int | NotGiven | None = NOT_GIVEN,
        config: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        source: FeatureSource | NotGiven | None = NOT_GIVEN,
        valid_until: datetime | str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> FeatureAccessDetail:
        """Change a company's access to a feature (``features.setAccess``).

        Give exactly one of ``company_id`` / ``external_org_id``. Only the arguments you pass
        change. ``quantity_limit=None`` means unlimited, ``valid_until=None`` no expiry;
        ``config`` is merged key by key into the existing config (keys sent untouched).
        """
        company = optional_str("company_id", company_id)
        org = optional_str("external_org_id", external_org_id)
        if isinstance(company, NotGiven) == isinstance(org, NotGiven):
            raise InvalidInputError(
                "company_id", "give exactly one of company_id and external_org_id"
            )
        if source is None:
            source = NOT_GIVEN
        if not isinstance(source, NotGiven) and (
            not isinstance(source, str) or source not in FEATURE_SOURCES
        ):
            raise InvalidInputError(
                "source", f"must be one of {', '.join(FEATURE_SOURCES)}, got {show(source)}"
            )
        until: datetime | NotGiven | None = valid_until  # type: ignore[assignment]
        if valid_until is not None and not isinstance(valid_until, NotGiven):
            until = timestamp("valid_until", valid_until)
        payload = compact(
            {
                "companyId": company,
                "externalOrgId": org,
                "featureCode": require_str("feature_code", feature_code),
                "isEnabled": optional_bool("is_enabled", is_enabled),
                "quantityLimit": nullable_int("quantity_limit", quantity_limit),
                "includedQuantity": nullable_int("included_quantity", included_quantity),
                "config": free_map("config", config),
                "source": source,
                "validUntil": until,
            }
        )
        return await self._client._call_cached(
            "features.setAccess",
            payload,
            FeatureAccessDetail.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def get_access_by_external_org_id(
        self,
        external_org_id: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> OrgFeatureAccess:
        """Every feature of the company linked to your org id
        (``features.getAccessByExternalOrgId``); cached with the client's ``cache=``."""
        return await self._client._call_cached(
            "features.getAccessByExternalOrgId",
            {"externalOrgId": external_org_id},
            OrgFeatureAccess.model_validate,
            check=checked_org,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def check_by_external_org_id(
        self,
        external_org_id: str,
        feature_code: str,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> FeatureAccess:
        """:meth:`check` by your org id instead of the company id (``features.checkByExternalOrgId``).

        With the client's ``cache=``, a miss also learns the org's company (through the
        cached ``companies.get_by_product_link``, concurrently in the async client), so the
        answer is shared with :meth:`check`, updated by ``track_usage`` and
        ``track_usage(external_org_id=...)`` needs no lookup afterwards.
        """
        return await self._client._call_cached(
            "features.checkByExternalOrgId",
            {"externalOrgId": external_org_id, "featureCode": feature_code},
            FeatureAccess.model_validate,
            check=_checked_org_check,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncFeaturesWithRawResponse:
    """``client.with_raw_response.features``: the methods of :class:`AsyncFeatures`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, features: AsyncFeatures) -> None:
        self.check = to_raw_response_wrapper(features.check)
        self.check_many = to_raw_response_wrapper(features.check_many)
        self.list_access = to_raw_response_wrapper(features.list_access)
        self.set_access = to_raw_response_wrapper(features.set_access)
        self.get_access_by_external_org_id = to_raw_response_wrapper(
            features.get_access_by_external_org_id
        )
        self.check_by_external_org_id = to_raw_response_wrapper(features.check_by_external_org_id)
