"""Base of the namespace objects (``client.features``, ``client.billing``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Optional, TypeVar, cast, overload

from pydantic import BaseModel

from .._base_client import AsyncBaseClient

if TYPE_CHECKING:
    from .._cache import AsyncEntitlementCache

__all__ = ["AsyncAPIResource", "list_of", "namespace", "optional", "written"]

_M = TypeVar("_M", bound=BaseModel)


class AsyncAPIResource:
    """A namespace of procedures bound to one client."""

    def __init__(self, client: AsyncBaseClient) -> None:
        self._client = client
        # The client's entitlement cache, or None (see chatarmin_os._cache).
        self._cache: AsyncEntitlementCache | None = getattr(client, "_cache", None)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


_R = TypeVar("_R", bound=AsyncAPIResource)


class namespace(Generic[_R]):
    """A client's namespace attribute (``client.features``), made on first access.

    Its module is imported then, with the result models it uses: a client that only checks
    features never loads the billing or tier code. Once made, the object sits in the
    client's ``__dict__``, so later accesses cost a plain attribute lookup.
    """

    def __init__(self, module: str, name: str, doc: str) -> None:
        self._module = module
        self._name = name
        self.__doc__ = doc
        self._attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, client: None, owner: type) -> namespace[_R]: ...

    @overload
    def __get__(self, client: AsyncBaseClient, owner: type) -> _R: ...

    def __get__(self, client: AsyncBaseClient | None, owner: type) -> namespace[_R] | _R:
        if client is None:
            return self
        from importlib import import_module

        module = import_module(self._module, __package__)
        resource: _R = getattr(module, self._name)(client)
        client.__dict__[self._attribute] = resource
        return resource


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
