"""Reservations apart from the client: holds, refusals, commit and release, with a ledger in
the process, the server's figures and the metering given as fakes."""

from __future__ import annotations

from typing import Any

import pytest

from chatarmin_os import (
    ChatarminOSError,
    InvalidInputError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from chatarmin_os._async._ledger import AsyncLedger
from chatarmin_os._async._reservation import AsyncReservation, AsyncReservations
from chatarmin_os._ledger.memory import MemoryLedger
from chatarmin_os._ledger.reservation import ReservationCore
from chatarmin_os._ledger.rules import LedgerFigures
from chatarmin_os._models import FeatureAccess

SLOT = ("comp_1", "ai_credit")


def access(*, limit: int | None, usage: int, enabled: bool = True) -> FeatureAccess:
    return FeatureAccess.model_validate(
        {
            "featureCode": "ai_credit",
            "isEnabled": enabled,
            "canUse": enabled and (limit is None or usage < limit),
            "hasQuantity": True,
            "currentUsage": usage,
            "quantityLimit": limit,
            "includedQuantity": None,
            "remaining": None if limit is None else limit - usage,
        }
    )


class Fakes:
    def __init__(self, answer: FeatureAccess) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []
        self.metered: list[tuple[str, str, int, str, Any]] = []
        self.meter_error: BaseException | None = None

    async def figures(self, company_id: str, feature_code: str) -> FeatureAccess:
        self.asked.append((company_id, feature_code))
        return self.answer

    async def meter(self, reservation: ReservationCore, quantity: int) -> None:
        if self.meter_error is not None:
            raise self.meter_error
        self.metered.append(
            (
                reservation.company_id,
                reservation.feature_code,
                quantity,
                reservation.idempotency_key,
                reservation.metadata,
            )
        )


def make(answer: FeatureAccess) -> tuple[AsyncReservations, Fakes]:
    fakes = Fakes(answer)
    flow = AsyncReservations(
        AsyncLedger(MemoryLedger()),
        figures=fakes.figures,
        meter=fakes.meter,
        url="https://os.invalid/api/v1/billing.reserve",
    )
    return flow, fakes


async def reserve(flow: AsyncReservations, quantity: int = 1, key: str = "k") -> AsyncReservation:
    return await flow.reserve(
        company_id="comp_1", feature_code="ai_credit", quantity=quantity, idempotency_key=key
    )


async def figures(flow: AsyncReservations) -> LedgerFigures | None:
    return await flow.ledger.figures(SLOT)


async def test_the_server_is_asked_once_then_holds_come_from_the_ledger() -> None:
    flow, fakes = make(access(limit=10, usage=4))
    first = await reserve(flow, 2, "a")
    second = await reserve(flow, 3, "b")
    assert fakes.asked == [SLOT]
    assert (first.remaining, second.remaining) == (4, 1)
    assert (first.state, first.company_id, first.feature_code) == ("held", *SLOT)
    assert await figures(flow) == LedgerFigures(10, 4, 5, 0, True)


async def test_a_hold_past_the_limit_is_refused_as_track_usage_would_be() -> None:
    flow, _ = make(access(limit=3, usage=2))
    await reserve(flow, 1)
    with pytest.raises(PreconditionFailedError) as caught:
        await reserve(flow, 1)
    error = caught.value
    assert (error.status_code, error.code, error.path) == (
        412,
        "PRECONDITION_FAILED",
        "billing.reserve",
    )
    assert str(error) == (
        "412 PRECONDITION_FAILED on billing.reserve: Usage limit reached for ai_credit: "
        "1 requested, 0 of 3 left (usage, holds and usage in flight counted)"
    )
    assert await figures(flow) == LedgerFigures(3, 2, 1, 0, True)


async def test_a_feature_not_enabled_is_refused_before_anything_is_held() -> None:
    flow, _ = make(access(limit=3, usage=0, enabled=False))
    with pytest.raises(PermissionDeniedError) as caught:
        await reserve(flow)
    assert (caught.value.status_code, caught.value.code) == (403, "FORBIDDEN")
    assert await figures(flow) == LedgerFigures(3, 0, 0, 0, False)


async def test_commit_meters_with_the_reservations_key_once() -> None:
    flow, fakes = make(access(limit=10, usage=0))
    reservation = await flow.reserve(
        company_id="comp_1",
        feature_code="ai_credit",
        quantity=5,
        idempotency_key="key-1",
        metadata={"job": "j1"},
    )
    await reservation.commit(3)  # less than reserved: the rest goes back
    await reservation.commit()
    await reservation.release()
    assert fakes.metered == [("comp_1", "ai_credit", 3, "key-1", {"job": "j1"})]
    assert (reservation.state, reservation.committed_quantity) == ("committed", 3)
    assert await figures(flow) == LedgerFigures(10, 0, 0, 3, True)
    await flow.answered("comp_1", "ai_credit", "key-1", ("counted", 3))
    assert await figures(flow) == LedgerFigures(10, 3, 0, 0, True)


async def test_commit_of_more_than_reserved_is_refused_and_keeps_the_hold() -> None:
    flow, fakes = make(access(limit=10, usage=0))
    reservation = await reserve(flow, 2)
    with pytest.raises(InvalidInputError, match="at most the 2 reserved"):
        await reservation.commit(3)
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidInputError):
            await reservation.commit(bad)  # type: ignore[arg-type]
    assert fakes.metered == []
    assert reservation.state == "held"
    await reservation.commit(2)
    assert [m[2] for m in fakes.metered] == [2]


async def test_commit_of_zero_meters_nothing_and_frees_the_hold() -> None:
    flow, fakes = make(access(limit=10, usage=0))
    reservation = await reserve(flow, 4)
    await reservation.commit(0)
    assert fakes.metered == []
    assert reservation.committed_quantity == 0
    assert await figures(flow) == LedgerFigures(10, 0, 0, 0, True)


async def test_release_gives_the_hold_back_once_and_commit_after_it_does_nothing() -> None:
    flow, fakes = make(access(limit=2, usage=0))
    reservation = await reserve(flow, 2)
    await reservation.release()
    await reservation.release()
    await reservation.commit()
    assert fakes.metered == []
    assert reservation.state == "released"
    assert (await reserve(flow, 2)).remaining == 0


async def test_a_failed_meter_keeps_the_reservation_held_for_another_commit() -> None:
    flow, fakes = make(access(limit=5, usage=0))
    reservation = await reserve(flow, 2, "key-2")
    fakes.meter_error = ChatarminOSError("buffer full")
    with pytest.raises(ChatarminOSError, match="buffer full"):
        await reservation.commit()
    assert reservation.state == "held"
    assert await figures(flow) == LedgerFigures(5, 0, 2, 0, True)
    fakes.meter_error = None
    await reservation.commit()
    assert [m[3] for m in fakes.metered] == ["key-2"]
    assert await figures(flow) == LedgerFigures(5, 0, 0, 2, True)


async def test_as_a_context_it_commits_on_exit_and_releases_on_an_exception() -> None:
    flow, fakes = make(access(limit=5, usage=0))
    async with await reserve(flow, 2, "ok") as reservation:
        assert reservation.state == "held"
    assert reservation.state == "committed"
    with pytest.raises(RuntimeError):
        async with await reserve(flow, 2, "boom") as failing:
            raise RuntimeError("the work failed")
    assert failing.state == "released"
    assert [m[3] for m in fakes.metered] == ["ok"]
    assert await figures(flow) == LedgerFigures(5, 0, 0, 2, True)


async def test_unlimited_features_hold_nothing_and_still_meter() -> None:
    flow, fakes = make(access(limit=None, usage=7))
    reservation = await reserve(flow, 10**6, "big")
    assert (reservation.state, reservation.remaining) == ("unlimited", None)
    await reservation.commit()
    assert [m[2] for m in fakes.metered] == [10**6]
    assert await figures(flow) == LedgerFigures(None, 7, 0, 0, True)


async def test_a_refused_event_makes_the_next_reservation_ask_the_server() -> None:
    flow, fakes = make(access(limit=5, usage=0))
    reservation = await reserve(flow, 1, "key-r")
    await reservation.commit()
    await flow.answered("comp_1", "ai_credit", "key-r", ("refused", None))
    fakes.answer = access(limit=5, usage=5)
    with pytest.raises(PreconditionFailedError):
        await reserve(flow, 1)
    assert fakes.asked == [SLOT, SLOT]
