"""Base of the namespace objects (``client.features``, ``client.billing``, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional, TypeVar, cast

from pydantic import BaseModel, TypeAdapter

from .._base_client import AsyncBaseClient

__all__ = ["AsyncAPIResource", "list_of", "optional"]

_M = TypeVar("_M", bound=BaseModel)


class AsyncAPIResource:
    """A namespace of procedures bound to one client."""

    def __init__(self, client: AsyncBaseClient) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"


def list_of(model: type[_M]) -> Callable[[Any], list[_M]]:
    """A parser for ``list[model]``."""
    adapter: TypeAdapter[list[_M]] = TypeAdapter(cast(Any, list[model]))  # type: ignore[valid-type]
    return adapter.validate_python


def optional(model: type[_M]) -> Callable[[Any], _M | None]:
    """A parser for ``model | None``."""
    adapter: TypeAdapter[_M | None] = TypeAdapter(cast(Any, Optional[model]))  # noqa: UP045
    return adapter.validate_python
