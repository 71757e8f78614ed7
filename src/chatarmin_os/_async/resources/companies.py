"""``client.companies``: look up, create, update and smart-link customer companies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..._client.options import request_options
from ..._exceptions import ChatarminOSError, InvalidInputError
from ..._inputs import Hints, HintsDict, hints_input
from ..._models import Company, SmartLinkResult
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import (
    compact,
    optional_str,
    optional_timestamp,
    require_str,
    unit_interval,
)
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource, optional

__all__ = ["AsyncCompanies", "AsyncCompaniesWithRawResponse", "checked_org"]

_optional_company = optional(Company)


def checked_org(raw: Mapping[str, Any]) -> dict[str, str]:
    """The input of ``companies.getByProductLink`` (the org id checked)."""
    return {"externalOrgId": require_str("external_org_id", raw["externalOrgId"])}


class AsyncCompanies(AsyncAPIResource):
    """Customer companies and their links to your product."""

    async def get_by_product_link(
        self,
        *,
        external_org_id: str,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Company | None:
        """The company linked to your org id, or ``None`` when it is not linked yet.

        Cached with the client's ``cache=`` (``None`` too: an org linked later by this SDK is
        seen at once, one linked elsewhere within the TTL).
        """
        return await self._client._call_cached(
            "companies.getByProductLink",
            {"externalOrgId": external_org_id},
            _optional_company,
            check=checked_org,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def _get_many_by_product_link(
        self, external_org_ids: Sequence[str]
    ) -> list[Company | ChatarminOSError | None]:
        """:meth:`get_by_product_link` for many org ids: each answer or error, in order.

        Without a cache the lookups travel together, as tRPC batches (the usage buffer
        resolves a batch's orgs so: one round trip, not one per org); with one, each goes
        through it (fresh answers at once, misses with its Redis level and outage rules).
        """
        if len(external_org_ids) > 1:
            inputs = [{"externalOrgId": org} for org in external_org_ids]
            try:
                return await self._client._call_many_cached(
                    "companies.getByProductLink", inputs, _optional_company, check=checked_org
                )
            except InvalidInputError:  # an org id that cannot be sent: find it, one by one
                pass
        answers: list[Company | ChatarminOSError | None] = []
        for org in external_org_ids:
            try:
                answers.append(await self.get_by_product_link(external_org_id=org))
            except ChatarminOSError as exc:
                answers.append(exc)
        return answers

    async def create(
        self,
        *,
        name: str,
        domain: str | NotGiven | None = NOT_GIVEN,
        external_org_id: str | NotGiven | None = NOT_GIVEN,
        label: str | NotGiven | None = NOT_GIVEN,
        contact_email: str | NotGiven | None = NOT_GIVEN,
        contact_name: str | NotGiven | None = NOT_GIVEN,
        created_at: datetime | str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Company:
        """Create a company and, with ``external_org_id``, link it to your product."""
        payload = compact(
            {
                "name": require_str("name", name),
                "domain": optional_str("domain", domain),
                "externalOrgId": optional_str("external_org_id", external_org_id),
                "label": optional_str("label", label),
                "contactEmail": optional_str("contact_email", contact_email),
                "contactName": optional_str("contact_name", contact_name),
                "createdAt": optional_timestamp("created_at", created_at),
            }
        )
        return await self._client._call_cached(
            "companies.create",
            payload,
            Company.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def update(
        self,
        *,
        company_id: str,
        name: str | NotGiven | None = NOT_GIVEN,
        domain: str | NotGiven | None = NOT_GIVEN,
        created_at: datetime | str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> Company:
        """Update a company's name, domain or creation date (e.g. to backfill history)."""
        payload = compact(
            {
                "companyId": require_str("company_id", company_id),
                "name": optional_str("name", name),
                "domain": optional_str("domain", domain),
                "createdAt": optional_timestamp("created_at", created_at),
            }
        )
        return await self._client._call_cached(
            "companies.update",
            payload,
            Company.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def smart_link(
        self,
        *,
        external_org_id: str,
        label: str,
        hints: Hints | HintsDict | NotGiven | None = NOT_GIVEN,
        min_confidence: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> SmartLinkResult:
        """Find the company your org belongs to by domain, name or e-mail domain, and link it.

        ``min_confidence`` (0–1, server default 0.8) is how sure a single match must be to be
        linked automatically; below it you get ``status="suggestions"``.
        """
        payload = compact(
            {
                "externalOrgId": require_str("external_org_id", external_org_id),
                "label": require_str("label", label),
                "hints": hints_input(hints),
                "minConfidence": unit_interval("min_confidence", min_confidence),
            }
        )
        return await self._client._call_cached(
            "companies.smartLink",
            payload,
            SmartLinkResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncCompaniesWithRawResponse:
    """``client.with_raw_response.companies``: the methods of :class:`AsyncCompanies`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, companies: AsyncCompanies) -> None:
        self.get_by_product_link = to_raw_response_wrapper(companies.get_by_product_link)
        self.create = to_raw_response_wrapper(companies.create)
        self.update = to_raw_response_wrapper(companies.update)
        self.smart_link = to_raw_response_wrapper(companies.smart_link)
