"""What a reservation is, apart from the waiting: its figures, its state, and the checks of
``commit(quantity)``. The twins (``_async/_reservation.py``) add commit and release."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias

from .._exceptions import ChatarminOSError, InvalidInputError
from .._models import FeatureAccess
from .memory import Slot

__all__ = ["AsyncFigures", "AsyncMeter", "Figures", "Meter", "ReservationCore", "ReservationState"]

AsyncMeter: TypeAlias = "Callable[[ReservationCore, int], Awaitable[None]]"
"""Meters ``quantity`` of a reservation with its idempotency key (the usage buffer's
``track_usage_later``)."""
Meter: TypeAlias = "Callable[[ReservationCore, int], None]"
"""The blocking :data:`AsyncMeter`."""

AsyncFigures: TypeAlias = Callable[[str, str], Awaitable[FeatureAccess]]
"""The server's live figures of (company id, feature code): ``features.check``."""
Figures: TypeAlias = Callable[[str, str], FeatureAccess]
"""The blocking :data:`AsyncFigures`."""

ReservationState = Literal["held", "committing", "committed", "released", "unlimited"]


class ReservationCore:
    """A quantity held against a feature's limit until committed or released."""

    __slots__ = (
        "_hold_id",
        "_in_redis",
        "_lock",
        "_metadata",
        "_quantity",
        "_remaining",
        "_slot",
        "_state",
        "_unlimited_commit",
        "committed_quantity",
        "external_org_id",
        "idempotency_key",
    )

    def __init__(
        self,
        *,
        slot: Slot,
        hold_id: str,
        quantity: int,
        idempotency_key: str,
        remaining: int | None,
        in_redis: bool,
        unlimited: bool = False,
        metadata: dict[str, Any] | None = None,
        external_org_id: str | None = None,
    ) -> None:
        self._slot = slot
        self._hold_id = hold_id
        self._quantity = quantity
        self._remaining = remaining
        self._in_redis = in_redis
        self._metadata = metadata
        self._state: ReservationState = "unlimited" if unlimited else "held"
        self._lock = threading.Lock()
        self._unlimited_commit = unlimited
        self.idempotency_key = idempotency_key
        """The key the committed usage is metered with (the same on every retry)."""
        self.external_org_id = external_org_id
        """The org id the reservation was made for, when it was made by org."""
        self.committed_quantity: int | None = None
        """What :meth:`commit` metered, once it did (``0``: nothing)."""

    @property
    def company_id(self) -> str:
        """The company whose quota is held."""
        return self._slot[0]

    @property
    def feature_code(self) -> str:
        """The feature whose quota is held."""
        return self._slot[1]

    @property
    def quantity(self) -> int:
        """The quantity held."""
        return self._quantity

    @property
    def remaining(self) -> int | None:
        """What was left of the limit after this hold (``None``: unlimited)."""
        return self._remaining

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The metadata the committed usage event carries."""
        return self._metadata

    @property
    def state(self) -> ReservationState:
        """``held`` (or ``unlimited``: nothing to hold), ``committed`` or ``released``."""
        return "held" if self._state == "committing" else self._state

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.feature_code} x{self._quantity} "
            f"company={self.company_id!r} state={self.state}>"
        )

    def _to_commit(self, quantity: int | None) -> int | None:
        """The quantity to meter, and the reservation claimed for committing; ``None`` when
        it was committed or released already (then committing does nothing)."""
        if quantity is None:
            amount = self._quantity
        elif isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise InvalidInputError("quantity", "must be a whole number of at least 0")
        elif quantity > self._quantity and self._state != "unlimited":
            raise InvalidInputError(
                "quantity", f"must be at most the {self._quantity} reserved (got {quantity})"
            )
        else:
            amount = quantity
        with self._lock:
            if self._state not in ("held", "unlimited"):
                if self._state == "committing":
                    raise ChatarminOSError("This reservation is being committed already.")
                return None
            self._unlimited_commit = self._state == "unlimited"
            self._state = "committing"
        return amount

    def _commit_failed(self) -> None:
        """Metering failed: the reservation is held again (commit may be called again)."""
        with self._lock:
            self._state = "unlimited" if self._unlimited_commit else "held"

    def _committed(self, amount: int) -> None:
        with self._lock:
            self._state = "committed"
            self.committed_quantity = amount

    @property
    def _unlimited(self) -> bool:
        return self._unlimited_commit

    def _to_release(self) -> bool:
        """Claim the reservation for releasing; whether the ledger holds something to give
        back (``False`` when done already, or unlimited)."""
        with self._lock:
            if self._state not in ("held", "unlimited"):
                if self._state == "committing":
                    raise ChatarminOSError("This reservation is being committed.")
                return False
            was_held = self._state == "held"
            self._state = "released"
            return was_held
