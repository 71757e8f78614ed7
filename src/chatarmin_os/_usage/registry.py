"""The usage buffers of a client and its ``with_options`` copies: one per API key and URL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .options import UsageBufferOptions

__all__ = ["UsageBuffers"]

B = TypeVar("B")


class UsageBuffers(dict[str, B]):
    """The buffers by destination (a hash of the base URL and API key), made on first use
    with the client's ``usage_buffer=`` options (the defaults without them); shared by a
    client and its copies, so a copy for the same API key and URL shares the buffer."""

    def __init__(self, options: UsageBufferOptions | None) -> None:
        super().__init__()
        self.options = options
        """The ``usage_buffer=`` the client was given (``None``: the defaults on first use)."""
        self._lock = threading.Lock()

    def get_or_make(self, dest: str, make: Callable[[UsageBufferOptions, str], B]) -> B:
        """The buffer for ``dest``, made by ``make(options, dest)`` when there is none."""
        with self._lock:
            buffer = self.get(dest)
            if buffer is None:
                from .options import UsageBufferOptions

                buffer = self[dest] = make(self.options or UsageBufferOptions(), dest)
            return buffer

    def all(self) -> list[B]:
        """Every buffer made so far."""
        with self._lock:
            return list(self.values())

    def spooled(self) -> bool:
        """Whether the client was given a spool (its leftovers are sent on start)."""
        return self.options is not None and self.options.spool is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)}>"
