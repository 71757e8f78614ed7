"""``UsageBufferOptions``: how ``billing.track_usage_later`` buffers usage events."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._exceptions import ChatarminOSError, ConfigurationError

if TYPE_CHECKING:
    from .events import UsageEvent

__all__ = ["OnError", "UsageBufferOptions", "WhenFull"]

WhenFull = Literal["block", "drop"]

OnError = Callable[["UsageEvent", ChatarminOSError], None]
"""``on_error(event, error)``: told about every event that will never be counted."""


def _seconds(name: str, value: object, *, allow_none: bool = False, low: float = 0.0) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= 86_400
    ):
        extra = " or None" if allow_none else ""
        raise ConfigurationError(
            f"UsageBufferOptions.{name} must be seconds from {low:g} to 86400{extra}"
        )


@dataclass(frozen=True)
class UsageBufferOptions:
    """How ``billing.track_usage_later`` buffers usage events (``usage_buffer=`` of a client).

    Args:
        max_batch: the most events sent in one tRPC batch request (default 100; keep it at or
            below your server's batch limit). A batch leaves as soon as this many are waiting.
        flush_interval: seconds an event waits at most for others to fill its batch
            (default 1.0).
        max_pending: the most events waiting to be sent (default 100,000: about 40 MB in
            memory at worst); with a spool, the most rows in the spool file for this API key
            and URL.
        when_full: what ``track_usage_later`` does when ``max_pending`` events wait:
            ``"block"`` (default) waits up to ``block_timeout`` for room, ``"drop"`` does not
            wait. An event that finds no room is dropped: counted in ``stats().dropped``,
            given to ``on_error`` and logged, never raised.
        block_timeout: seconds ``"block"`` waits for room (default 1.0; ``None``: as long as
            it takes). Room is made by the worker sending; nothing else waits on the network.
        spool: a SQLite file (created when missing) that every event is written to before
            ``track_usage_later`` returns and removed from once ChatarminOS answered; events
            left by a crashed process are sent by the next one. ``None`` (default): memory only.
        spool_fsync: ``True`` makes every spool write durable against power loss too
            (SQLite ``synchronous=FULL``, an fsync per event); the default survives a crash
            or ``kill -9`` of the process, not of the machine.
        on_error: ``on_error(event, error)``, called for every event that will never be
            counted: refused by ChatarminOS (``PreconditionFailedError``,
            ``PermissionDeniedError``, ``NotFoundError``, ``BadRequestError``,
            ``ConflictError``, :class:`UnlinkedOrgError`) or dropped for lack of room
            (:class:`UsageBufferFullError`). Called from the worker (refusals) or the
            caller (drops); keep it quick. Without it, each such event is logged as a warning.
        close_timeout: seconds closing the client (or the interpreter's exit) waits for the
            buffer to empty and its worker to stop (default 10.0, well inside the usual 30 s
            a process manager gives a process to stop).
    """

    max_batch: int = 100
    flush_interval: float = 1.0
    max_pending: int = 100_000
    when_full: WhenFull = "block"
    block_timeout: float | None = 1.0
    spool: str | os.PathLike[str] | None = None
    spool_fsync: bool = False
    on_error: OnError | None = None
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name, high in (("max_batch", 1000), ("max_pending", 100_000_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigurationError(
                    f"UsageBufferOptions.{name} must be an int from 1 to {high:,}"
                )
        _seconds("flush_interval", self.flush_interval)
        _seconds("block_timeout", self.block_timeout, allow_none=True)
        _seconds("close_timeout", self.close_timeout)
        if self.when_full not in ("block", "drop"):
            raise ConfigurationError("UsageBufferOptions.when_full must be 'block' or 'drop'")
        if self.spool is not None and not isinstance(self.spool, (str, os.PathLike)):
            raise ConfigurationError("UsageBufferOptions.spool must be a file path or None")
        if self.spool is not None and not os.fspath(self.spool).strip():
            raise ConfigurationError("UsageBufferOptions.spool must not be empty")
        if not isinstance(self.spool_fsync, bool):
            raise ConfigurationError("UsageBufferOptions.spool_fsync must be a bool")
        if self.on_error is not None and not callable(self.on_error):
            raise ConfigurationError("UsageBufferOptions.on_error must be callable or None")

    @classmethod
    def resolve(cls, value: object) -> UsageBufferOptions | None:
        """``usage_buffer=`` as a client takes it: ``None`` or a :class:`UsageBufferOptions`."""
        if value is None or isinstance(value, UsageBufferOptions):
            return value
        raise ConfigurationError(
            f"usage_buffer must be a UsageBufferOptions or None, got {type(value).__name__}"
        )
