"""Base of the namespace objects (``client.features``, ``client.billing``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, TypeVar, cast

from pydantic import BaseModel

from .._base_client import AsyncBaseClient

if TYPE_CHECKING:
    from .._cache import AsyncEntitlementCache

__all__ = ["AsyncAPIResource", "list_of", "optional", "written"]

_M = TypeVar("_M", bound=BaseModel)


class AsyncAPIResource:
    """A namespace of procedures bound to one client."""

    def __init__(self, client: AsyncBaseClient) -> None:
        self._client = client
        # The client's entitlement cache, or None (see chatarmin_os._cache).
        self._cache: AsyncEntitlementCache | None = getattr(client, "_cache", None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


def _lazy_adapter(type_: Any) -> Callable[[Any], Any]:
    """``TypeAdapter(type_).validate_python``, with the adapter built on first use."""
    validate_python: Callable[[Any], Any] | None = None

    def validate(value: Any) -> Any:
        nonlocal validate_python
        if validate_python is None:
            from pydantic import TypeAdapter

            validate_python = TypeAdapter(type_).validate_python
        return validate_python(value)

    return validate


def list_of(model: type[_M]) -> Callable[[Any], list[_M]]:
    """A parser for ``list[model]`` (built on first use)."""
    return _lazy_adapter(cast(Any, list[model]))  # type: ignore[valid-type]


def optional(model: type[_M]) -> Callable[[Any], _M | None]:
    """A parser for ``model | None`` (built on first use)."""
    return _lazy_adapter(cast(Any, Optional[model]))  # noqa: UP045


async def written(
    cache: AsyncEntitlementCache | None,
    *,
    company_id: str | None = None,
    external_org_id: str | None = None,
    company_record: bool = False,
    all_orgs: bool = False,
) -> None:
    """After one of our writes (answered or not: it may have been applied): drop what it
    changed from ``cache``, when the client has one (see :meth:`AsyncEntitlementCache.written`)."""
    if cache is not None:
        await cache.written(
            company_id=company_id,
            external_org_id=external_org_id,
            company_record=company_record,
            all_orgs=all_orgs,
        )
