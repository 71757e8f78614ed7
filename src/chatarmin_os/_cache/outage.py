"""Whether ChatarminOS is failing for a cache, and when to try it again."""

from __future__ import annotations

from typing import Any

__all__ = ["OUTAGE_FIRST_RETRY", "OUTAGE_MAX_RETRY", "Outage"]

OUTAGE_FIRST_RETRY = 1.0
"""Seconds after an outage is noticed before a background request tries the server again."""
OUTAGE_MAX_RETRY = 15.0
"""The longest wait between two such tries (the wait doubles from the first)."""


class Outage:
    """Whether ChatarminOS is failing for this cache, and when to try it again."""

    __slots__ = ("failures", "probe", "retry_at")

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.probe: Any = None  # the background request's handle (``.alive()``)

    @property
    def probing(self) -> bool:
        """Whether a background request is running (here: a thread of this process, or a
        task of the running event loop; one lost with its loop does not count)."""
        return self.probe is not None and bool(self.probe.alive())

    @property
    def active(self) -> bool:
        return self.failures > 0

    def failed(self, now: float) -> None:
        delay = min(OUTAGE_FIRST_RETRY * 2 ** min(self.failures, 16), OUTAGE_MAX_RETRY)
        self.failures += 1
        self.retry_at = now + delay

    def recovered(self) -> bool:
        """End the outage; whether there was one."""
        was = self.failures > 0
        self.failures = 0
        self.retry_at = 0.0
        return was
