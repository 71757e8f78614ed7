"""The procedure registry: each procedure declared once, with its path, kind, input and handler.

A procedure module declares a handler like this::

    @query("features.check", input=Obj({"companyId": COMPANY_ID, "featureCode": FEATURE_CODE}))
    def check(store: Store, args: dict[str, Any]) -> dict[str, Any]:
        ...

``input=None`` declares a procedure without input (it ignores any input it is given, as
``@trpc/server`` does). The path and kind must be those of the shared table
``chatarmin_os._procedures.PROCEDURES`` that the SDK reads: a declaration that disagrees with
it fails at import, so the two sides cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .._procedures import NO_INPUT, PROCEDURES
from .._wire import Kind
from ._checks import Checker, Invalid
from ._errors import ProcedureError
from ._store import Store

__all__ = ["REGISTRY", "Handler", "Procedure", "mutation", "query"]

Handler = Callable[[Store, dict[str, Any]], Any]
"""A procedure implementation: ``(store, validated input) -> output``."""

_H = TypeVar("_H", bound=Handler)


@dataclass(frozen=True)
class Procedure:
    """One procedure: where it lives, how it is called, what it takes, what runs it."""

    path: str
    """Its path, e.g. ``"features.check"``."""
    kind: Kind
    """``"query"`` (read-only, GET) or ``"mutation"`` (writes, POST)."""
    input: Checker | None
    """The input schema, or ``None`` for a procedure that takes no input."""
    handler: Handler
    """The implementation."""

    def parse(self, value: Any) -> dict[str, Any]:
        """The validated input, or ``BAD_REQUEST`` naming each offending field."""
        if self.input is None:
            return {}
        try:
            parsed: dict[str, Any] = self.input(value, "")
        except Invalid as error:
            raise ProcedureError("BAD_REQUEST", str(error)) from None
        return parsed


REGISTRY: dict[str, Procedure] = {}
"""Every declared procedure by path (filled as ``local.procedures`` is imported)."""


def _declare(path: str, kind: Kind, input: Checker | None) -> Callable[[_H], _H]:
    if PROCEDURES.get(path) != kind:
        raise RuntimeError(
            f"{path} is declared as a {kind}, but chatarmin_os._procedures says "
            f"{PROCEDURES.get(path) or 'it does not exist'}"
        )
    if (input is None) != (path in NO_INPUT):
        raise RuntimeError(f"{path}: input=None must match chatarmin_os._procedures.NO_INPUT")
    if path in REGISTRY:
        raise RuntimeError(f"{path} is declared twice")

    def register(handler: _H) -> _H:
        REGISTRY[path] = Procedure(path, kind, input, handler)
        return handler

    return register


def query(path: str, *, input: Checker | None) -> Callable[[_H], _H]:
    """Declare a query (read-only; runs in a deferred transaction)."""
    return _declare(path, "query", input)


def mutation(path: str, *, input: Checker | None) -> Callable[[_H], _H]:
    """Declare a mutation (runs in a write transaction)."""
    return _declare(path, "mutation", input)
