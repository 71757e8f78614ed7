"""``billing.reserve``: hold quota before the work, meter it after (the waiting half).

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_reservation.py``. The figures
and state of a reservation are in :mod:`chatarmin_os._ledger.reservation`, the ledger's
rules in :mod:`chatarmin_os._ledger`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .._exceptions import ConfigurationError
from .._ids import time_ordered_uuid
from .._ledger.memory import Slot
from .._ledger.refusals import limit_reached, not_enabled
from .._ledger.reservation import AsyncFigures, AsyncMeter, ReservationCore
from .._ledger.router import Answer
from ._ledger import AsyncLedger

__all__ = ["AsyncReservation", "AsyncReservations"]


class AsyncReservation(ReservationCore):
    """A quantity of a feature held against its limit (what ``billing.reserve`` returns):
    :meth:`commit` meters it (or less), :meth:`release` gives it back. Both are idempotent.

    As ``async with`` it commits on normal exit and releases on an exception. A hold
    neither committed nor released expires after ``ReservationOptions.hold_timeout`` (so a
    crashed process frees its quota); a commit after that still meters, and logs a warning
    (once per client) that the limit was not held for it meanwhile.

    Read :attr:`remaining` (left of the limit after this hold, ``None`` when unlimited),
    :attr:`idempotency_key` (what the commit is metered with), :attr:`state` (``held``,
    ``unlimited``, ``committed``, ``released``) and :attr:`committed_quantity`. Its
    ``repr`` shows the feature, quantity, company and state, never the API key.
    """

    __slots__ = ("_ledger", "_meter")

    def __init__(self, ledger: AsyncLedger, meter: AsyncMeter, **core: Any) -> None:
        super().__init__(**core)
        self._ledger = ledger
        self._meter = meter

    async def commit(self, quantity: int | None = None) -> None:
        """Meter ``quantity`` (default: all that was reserved; less is fine, more is an
        :class:`~chatarmin_os.InvalidInputError`) through the usage buffer, exactly once,
        with :attr:`idempotency_key`; the rest of the hold is given back. Calling it again,
        or after :meth:`release`, does nothing. When the buffer refuses the event (full),
        the error is raised and the reservation stays held."""
        amount = self._to_commit(quantity)
        if amount is None:
            return
        ledger, key = self._ledger, self.idempotency_key
        try:
            if amount > 0:
                if not self._unlimited:
                    ledger.committing(key)
                await self._meter(self, amount)
        except BaseException:
            ledger.committed(key)
            self._commit_failed()
            raise
        if not self._unlimited:
            # Sent to Redis with the next round trip; a hold found expired is warned about.
            await ledger.commit_soon(
                self._slot, self._hold_id, amount, key, in_redis=self._in_redis
            )
        self._committed(amount)

    async def release(self) -> None:
        """Give the held quantity back, metering nothing. Idempotent; after :meth:`commit`
        it does nothing."""
        if self._to_release():
            await self._ledger.release(self._slot, self._hold_id, in_redis=self._in_redis)

    async def __aenter__(self) -> AsyncReservation:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            await self.release()


class AsyncReservations:
    """The reservations of one product: a ledger, the server's figures, and metering.

    Given what it needs as callables (it never sees the client): ``figures`` asks the
    server (``features.check``) when the ledger has no fresh figures; ``meter`` hands a
    commit to the usage buffer; ``url`` names the answer of a refusal made here.
    """

    def __init__(
        self, ledger: AsyncLedger, *, figures: AsyncFigures, meter: AsyncMeter, url: str
    ) -> None:
        self.ledger = ledger
        self._figures = figures
        self._meter = meter
        self._url = url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ledger!r}>"

    async def reserve(
        self,
        *,
        company_id: str,
        feature_code: str,
        quantity: int,
        idempotency_key: str,
        metadata: dict[str, Any] | None = None,
        external_org_id: str | None = None,
    ) -> AsyncReservation:
        """Hold ``quantity`` or raise what ``track_usage`` would raise for it."""
        slot: Slot = (company_id, feature_code)
        hold_id = time_ordered_uuid()
        verdict, in_redis = await self.ledger.hold(slot, hold_id, quantity)
        if verdict.outcome == "miss":
            access = await self._figures(company_id, feature_code)
            await self.ledger.load(
                slot,
                limit=access.quantity_limit,
                usage=access.current_usage,
                enabled=access.is_enabled,
            )
            verdict, in_redis = await self.ledger.hold(slot, hold_id, quantity)
            if verdict.outcome == "miss":
                raise ConfigurationError("the ledger's refresh must be more than 0 seconds")
        if verdict.outcome == "disabled":
            raise not_enabled(feature_code, self._url)
        if verdict.outcome == "refused":
            raise limit_reached(feature_code, quantity, verdict.remaining, verdict.limit, self._url)
        return AsyncReservation(
            self.ledger,
            self._meter,
            slot=slot,
            hold_id=hold_id,
            quantity=quantity,
            idempotency_key=idempotency_key,
            remaining=verdict.remaining,
            in_redis=in_redis,
            unlimited=verdict.outcome == "unlimited",
            metadata=metadata,
            external_org_id=external_org_id,
        )

    async def answered(self, company_id: str, feature_code: str, key: str, answer: Answer) -> None:
        """What the server made of a metered event (the usage buffer's acknowledgement)."""
        await self.ledger.answered((company_id, feature_code), key, answer)
