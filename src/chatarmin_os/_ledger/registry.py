"""The reservation flows of a client and its ``with_options`` copies: one per API key and URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from .._fork import register as reset_after_fork
from .options import ReservationOptions

if TYPE_CHECKING:
    from .router import Answer

__all__ = ["Flows", "answer_of"]

F = TypeVar("F")


class Flows(Generic[F]):
    """The flows by destination (a hash of the base URL and API key), made on first use."""

    def __init__(self, options: ReservationOptions) -> None:
        self.options = options
        self._flows: dict[str, F] = {}
        self._lock = threading.Lock()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """A forked child gets a free lock (the flows reset themselves)."""
        self._lock = threading.Lock()

    def get(self, dest: str) -> F | None:
        """The flow of ``dest`` if one was made."""
        return self._flows.get(dest)

    def all(self) -> list[F]:
        """Every flow made so far."""
        return list(self._flows.values())

    def get_or_make(self, dest: str, make: Callable[[ReservationOptions, str], F]) -> F:
        """The flow of ``dest``, made by ``make(options, dest)`` when there is none."""
        with self._lock:
            flow = self._flows.get(dest)
            if flow is None:
                flow = self._flows[dest] = make(self.options, dest)
            return flow

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self._flows)}>"


def answer_of(outcome: object) -> Answer:
    """What the usage buffer's outcome of an event means to the ledger: counted (with the
    usage the server reported), refused (a limit or a disabled feature), or dropped."""
    from .._exceptions import PermissionDeniedError, PreconditionFailedError
    from .._models import UsageResult

    if isinstance(outcome, UsageResult):
        return "counted", outcome.current_usage
    if isinstance(outcome, (PreconditionFailedError, PermissionDeniedError)):
        return "refused", None
    return "dropped", None
