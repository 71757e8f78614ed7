"""``client.contacts``: the people at a company."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..._client.options import request_options
from ..._inputs import ContactInput, ContactInputDict
from ..._models import BulkUpsertResult, Contact, UpsertedContact
from ..._types import NOT_GIVEN, NotGiven, Timeout
from ..._validate import (
    compact,
    free_map,
    model_list,
    optional_bool,
    optional_str,
    require_str,
)
from ..._wire import MAX_BULK_CONTACTS
from .._raw import to_raw_response_wrapper
from ._resource import AsyncAPIResource, list_of

__all__ = ["AsyncContacts", "AsyncContactsWithRawResponse"]

"""The most contacts one ``bulk_upsert`` call takes."""

_list_contacts = list_of(Contact)


class AsyncContacts(AsyncAPIResource):
    """Create, upsert and list contacts; a contact is matched by e-mail, case-insensitively."""

    async def create(
        self,
        *,
        company_id: str,
        email: str,
        name: str | NotGiven | None = NOT_GIVEN,
        role: str | NotGiven | None = NOT_GIVEN,
        is_primary: bool | NotGiven | None = NOT_GIVEN,
        avatar_url: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> UpsertedContact:
        """Create a contact, or update the one with that e-mail; ``is_new`` tells which."""
        payload = compact(
            {
                "companyId": require_str("company_id", company_id),
                "email": require_str("email", email),
                "name": optional_str("name", name),
                "role": optional_str("role", role),
                "isPrimary": optional_bool("is_primary", is_primary),
                "avatarUrl": optional_str("avatar_url", avatar_url),
                "metadata": free_map("metadata", metadata),
            }
        )
        return await self._client._call(
            "contacts.create",
            payload,
            UpsertedContact.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def bulk_upsert(
        self,
        *,
        company_id: str,
        contacts: Sequence[ContactInput | ContactInputDict],
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> BulkUpsertResult:
        """Create or update up to 1000 contacts in one call (dicts or :class:`ContactInput`)."""
        items = model_list(
            "contacts", ContactInput, contacts, min_items=1, max_items=MAX_BULK_CONTACTS
        )
        payload = {
            "companyId": require_str("company_id", company_id),
            "contacts": [item.to_wire() for item in items],
        }
        return await self._client._call(
            "contacts.bulkUpsert",
            payload,
            BulkUpsertResult.model_validate,
            options=request_options(extra_headers, extra_query, timeout),
        )

    async def list(
        self,
        company_id: str,
        primary_only: bool | None = False,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> list[Contact]:
        """A company's contacts, the primary one first; only it with ``primary_only=True``."""
        payload: dict[str, Any] = {"companyId": require_str("company_id", company_id)}
        if optional_bool("primary_only", primary_only):
            payload["primaryOnly"] = True
        result: list[Contact] = await self._client._call(
            "contacts.list",
            payload,
            _list_contacts,
            options=request_options(extra_headers, extra_query, timeout),
        )
        return result


class AsyncContactsWithRawResponse:
    """``client.with_raw_response.contacts``: the methods of :class:`AsyncContacts`, each returning
    an :class:`~chatarmin_os.APIResponse` whose ``parse()`` is the plain call's result."""

    def __init__(self, contacts: AsyncContacts) -> None:
        self.create = to_raw_response_wrapper(contacts.create)
        self.bulk_upsert = to_raw_response_wrapper(contacts.bulk_upsert)
        self.list = to_raw_response_wrapper(contacts.list)
