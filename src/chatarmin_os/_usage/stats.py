"""What a usage buffer did: the public :class:`UsageBufferStats` and its running totals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BufferCounters", "UsageBufferStats"]


@dataclass(frozen=True)
class UsageBufferStats:
    """What a usage buffer did so far (``client.usage_buffer.stats()``), in this process.

    ``pending`` counts events enqueued and not answered yet (with a spool: the rows in the
    spool file for this API key and URL, whoever wrote them); ``sent`` those ChatarminOS
    answered with a usage result, ``duplicates`` the part of them it had already counted (an
    earlier attempt's answer was lost); ``refused`` those refused for good; ``dropped`` those
    that found no room; ``retries`` how many times an event was sent again after a failed
    attempt. ``oldest_pending_age`` is the age in seconds of the oldest pending event, and
    ``last_error`` the last failure that is being retried (``None`` once a batch got through).
    """

    pending: int
    sent: int
    duplicates: int
    refused: int
    dropped: int
    retries: int
    oldest_pending_age: float | None
    last_error: str | None = None


class BufferCounters:
    """The running totals behind :class:`UsageBufferStats` (mutated under the buffer's lock)."""

    __slots__ = ("dropped", "duplicates", "last_error", "refused", "retries", "sent")

    def __init__(self) -> None:
        self.sent = self.duplicates = self.refused = self.dropped = self.retries = 0
        self.last_error: str | None = None
