"""Small shared types: the ``NOT_GIVEN`` sentinel and the configuration aliases."""

from __future__ import annotations

from typing import Literal, TypeAlias, final

import httpx

__all__ = ["NOT_GIVEN", "NotGiven", "Timeout", "Transformer"]


@final
class NotGiven:
    """The type of :data:`NOT_GIVEN`: marks an argument the caller did not pass.

    It differs from ``None``: ``features.set_access(quantity_limit=None)`` sends
    ``"quantityLimit": null`` (unlimited), leaving the argument out sends nothing.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
"""The sentinel default of optional arguments: "the caller did not pass this"."""

Transformer: TypeAlias = Literal["json", "superjson"]
"""How the server encodes values: plain JSON (the default) or superjson."""

Timeout: TypeAlias = float | httpx.Timeout | None
"""Seconds for every phase, an :class:`httpx.Timeout`, or ``None`` for no timeout."""
