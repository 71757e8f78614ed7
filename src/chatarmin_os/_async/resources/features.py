"""``client.features``: check and manage feature access."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, overload

from ..._exceptions import ChatarminOSError, InvalidInputError
from ..._inputs import FeatureCheckInput
from ..._models import FeatureAccess, FeatureAccessDetail, FeatureSource, OrgFeatureAccess
from ..._types import NOT_GIVEN, NotGiven
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
from ._resource import AsyncAPIResource, list_of
from .companies import AsyncCompanies, product_link

__all__ = ["AsyncFeatures"]

_list_details = list_of(FeatureAccessDetail)


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

    async def check(self, *, company_id: str, feature_code: str) -> FeatureAccess:
        """Whether a company may use a feature now (``features.check``).

        Example::

            access = await client.features.check(company_id=cid, feature_code="ai_credit")
            if not access.can_use:
                raise PermissionError("Upgrade required")

        With the client's ``cache=``, answered from the cache while fresh (``access.source``
        says ``"cache"``; see the README's "Gating in the hot path").
        """
        if self._cache is not None and (hit := self._cache.hit_check(company_id, feature_code)):
            return hit
        payload = {
            "companyId": require_str("company_id", company_id),
            "featureCode": require_str("feature_code", feature_code),
        }

        async def fetch() -> FeatureAccess:
            return await self._client._call("features.check", payload, FeatureAccess.model_validate)

        if self._cache is not None:
            return await self._cache.load_check(company_id, feature_code, fetch)
        return await fetch()

    @overload
    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: Literal[False] = False,
    ) -> list[FeatureAccess]: ...

    @overload
    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: Literal[True],
    ) -> list[FeatureAccess | ChatarminOSError]: ...

    async def check_many(
        self,
        checks: Iterable[tuple[str, str] | FeatureCheckInput],
        *,
        return_exceptions: bool = False,
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
            "features.check", payloads, FeatureAccess.model_validate
        )
        if not return_exceptions:
            for result in results:
                if isinstance(result, ChatarminOSError):
                    raise result
        return results

    async def list_access(self, company_id: str) -> list[FeatureAccessDetail]:
        """Every feature and the company's access to it (``features.listAccess``); cached
        with the client's ``cache=`` (each item's ``provenance`` says where it came from)."""
        if self._cache is not None and (hit := self._cache.hit_list(company_id)) is not None:
            return hit
        payload = {"companyId": require_str("company_id", company_id)}

        async def fetch() -> list[FeatureAccessDetail]:
            result: list[FeatureAccessDetail] = await self._client._call(
                "features.listAccess", payload, _list_details
            )
            return result

        if self._cache is not None:
            return await self._cache.load_list(company_id, fetch)
        return await fetch()

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
        try:
            return await self._client._call(
                "features.setAccess", payload, FeatureAccessDetail.model_validate
            )
        finally:
            await self._written(company, org)

    async def _written(self, company: str | NotGiven, org: str | NotGiven) -> None:
        """After ``set_access`` (answered or not): drop the company's cached entries."""
        if self._cache is None:
            return
        if isinstance(company, NotGiven):
            assert not isinstance(org, NotGiven)
            try:  # the org's company: cached mostly; asked for when not known
                linked = await AsyncCompanies(self._client).get_by_product_link(external_org_id=org)
            except ChatarminOSError:
                await self._cache.clear()  # cannot tell which company changed
                return
            company = linked.id if linked is not None else NOT_GIVEN
        await self._cache.written(
            company_id=None if isinstance(company, NotGiven) else company,
            external_org_id=None if isinstance(org, NotGiven) else org,
        )

    async def get_access_by_external_org_id(self, external_org_id: str) -> OrgFeatureAccess:
        """Every feature of the company linked to your org id
        (``features.getAccessByExternalOrgId``); cached with the client's ``cache=``."""
        if self._cache is not None and (hit := self._cache.hit_org_access(external_org_id)):
            return hit
        payload = {"externalOrgId": require_str("external_org_id", external_org_id)}

        async def fetch() -> OrgFeatureAccess:
            return await self._client._call(
                "features.getAccessByExternalOrgId", payload, OrgFeatureAccess.model_validate
            )

        if self._cache is not None:
            return await self._cache.load_org_access(external_org_id, fetch)
        return await fetch()

    async def check_by_external_org_id(
        self, external_org_id: str, feature_code: str
    ) -> FeatureAccess:
        """:meth:`check` by your org id instead of the company id (``features.checkByExternalOrgId``).

        With the client's ``cache=``, a miss also learns the org's company (through the
        cached ``companies.get_by_product_link``, concurrently in the async client), so the
        answer is shared with :meth:`check`, updated by ``track_usage`` and
        ``track_usage(external_org_id=...)`` needs no lookup afterwards.
        """
        cache = self._cache
        if cache is not None and (hit := cache.hit_org_check(external_org_id, feature_code)):
            return hit
        payload = {
            "externalOrgId": require_str("external_org_id", external_org_id),
            "featureCode": require_str("feature_code", feature_code),
        }

        async def fetch() -> FeatureAccess:
            return await self._client._call(
                "features.checkByExternalOrgId", payload, FeatureAccess.model_validate
            )

        if cache is not None:
            return await cache.load_org_check(
                external_org_id, feature_code, fetch, product_link(self._client, external_org_id)
            )
        return await fetch()
