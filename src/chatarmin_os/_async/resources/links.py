"""``client.links``: manual product links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..._client.options import request_options
from ..._models import ProductLink, ResetLinksResult
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import compact, optional_bool, optional_str, require_str
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource

__all__ = ["AsyncLinks", "AsyncLinksWithRawResponse"]


class AsyncLinks(AsyncAPIResource):
    """Links between your product's org ids and companies."""

    async def create(
        self,
        *,
        company_id: str,
        external_org_id: str,
        label: str | NotGiven | None = NOT_GIVEN,
        external_user_id: str | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ProductLink:
        """Link your org id to an existing company (``links.create``)."""
        payload = compact(
            {
                "companyId": require_str("company_id", company_id),
                "externalOrgId": require_str("external_org_id", external_org_id),
                "label": optional_str("label", label),
                "externalUserId": optional_str("external_user_id", external_user_id),
            }
        )
        return await self._client._call_cached(
            "links.create",
            payload,
            ProductLink.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def reset(
        self,
        *,
        delete_contacts: bool | None = False,
        reset_mrr: bool | None = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ResetLinksResult:
        """Delete every link of your product, e.g. before a re-import (``links.reset``).

        ``delete_contacts`` also deletes the linked companies' contacts; ``reset_mrr`` their
        MRR figures. Only flags you set are sent.
        """
        payload: dict[str, Any] = {}
        if optional_bool("delete_contacts", delete_contacts):
            payload["deleteContacts"] = True
        if optional_bool("reset_mrr", reset_mrr):
            payload["resetMrr"] = True
        return await self._client._call_cached(
            "links.reset",
            payload,
            ResetLinksResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )


class AsyncLinksWithRawResponse:
    """``client.with_raw_response.links``: the methods of :class:`AsyncLinks`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, links: AsyncLinks) -> None:
        self.create = to_raw_response_wrapper(links.create)
        self.reset = to_raw_response_wrapper(links.reset)
