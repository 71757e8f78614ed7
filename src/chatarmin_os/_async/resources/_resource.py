"""Base of the namespace objects (``client.features``, ``client.billing``, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Optional, Protocol, TypeVar, cast, overload

from pydantic import BaseModel

from ..._exceptions import ChatarminOSError
from .._base_client import AsyncBaseClient

__all__ = ["AsyncAPIResource", "AsyncClientCalls", "list_of", "namespace", "optional"]

_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


class AsyncClientCalls(Protocol):
    """What a namespace needs of its client: the calls (``AsyncChatarminOS`` has them).

    ``_call`` sends a procedure; ``_call_cached`` sends one that has a caching rule beside
    the procedure table (a query may be answered without a request; ``check`` turns the
    caller's values into the input to send, only when one is sent). ``options`` are the
    caller's per-call options (:class:`~chatarmin_os.RequestOptions`), passed through as given.
    """

    async def _call(
        self,
        path: str,
        input: Any,
        parse: Callable[[Any], _T],
        *,
        idempotent: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> _T: ...

    async def _call_many(
        self,
        path: str,
        inputs: Sequence[Any],
        parse: Callable[[Any], _T],
        *,
        options: Mapping[str, Any] | None = None,
    ) -> list[_T | ChatarminOSError]: ...

    async def _call_cached(
        self,
        path: str,
        payload: Mapping[str, Any],
        parse: Callable[[Any], _T],
        check: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        *,
        idempotent: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> _T: ...

    async def _call_many_cached(
        self,
        path: str,
        inputs: Sequence[Mapping[str, Any]],
        parse: Callable[[Any], _T],
        *,
        check: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[_T | ChatarminOSError]: ...


class AsyncAPIResource:
    """A namespace of procedures bound to one client."""

    def __init__(self, client: AsyncClientCalls) -> None:
        self._client = client

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
