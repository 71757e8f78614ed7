"""``ReservationOptions``: how long holds and in-flight usage count, how often figures refresh."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._exceptions import ConfigurationError
from .rules import DEFAULT_FLIGHT_TIMEOUT, DEFAULT_HOLD_TIMEOUT, DEFAULT_REFRESH

__all__ = ["ReservationOptions"]

_MAX_SECONDS = 86_400.0


def _seconds(name: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 < value <= _MAX_SECONDS
    ):
        raise ConfigurationError(f"ReservationOptions.{name} must be seconds from 0 to 86,400")


@dataclass(frozen=True)
class ReservationOptions:
    """How ``billing.reserve`` holds quota (``AsyncChatarminOS(reservations=...)``).

    The quota ledger lives in Redis when the client's cache has a ``redis_url`` (one quota for
    every process sharing it), else in the process.
    """

    hold_timeout: float = DEFAULT_HOLD_TIMEOUT
    """Seconds a reservation holds its quantity unless committed or released first; a crashed
    process's holds are free again after it."""
    flight_timeout: float = DEFAULT_FLIGHT_TIMEOUT
    """Seconds committed usage counts as in flight while ChatarminOS has not acknowledged it."""
    refresh: float = DEFAULT_REFRESH
    """Seconds after which the ledger asks ChatarminOS again for a feature's usage and limit."""

    def __post_init__(self) -> None:
        _seconds("hold_timeout", self.hold_timeout)
        _seconds("flight_timeout", self.flight_timeout)
        _seconds("refresh", self.refresh)

    @classmethod
    def resolve(cls, value: object) -> ReservationOptions:
        """``None`` -> the defaults; a :class:`ReservationOptions` as it is."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        raise ConfigurationError(
            f"reservations must be a ReservationOptions or None, got {type(value).__name__}"
        )
