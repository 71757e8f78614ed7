"""``billing.reserve`` against the local ChatarminOS: holds that never let more through than
the limit, commits metered once through the usage buffer, releases, and the refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    AsyncReservation,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ReservationOptions,
)
from chatarmin_os.local import LocalEngine
from tests.concurrently import arun_all

ORG = "org_reserve"


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine()
    yield eng
    eng.close()


@pytest.fixture
async def client(engine: LocalEngine) -> AsyncIterator[AsyncChatarminOS]:
    async with AsyncChatarminOS.local(engine) as os:
        yield os


async def company_with_limit(client: AsyncChatarminOS, limit: int | None) -> str:
    result = await client.onboard(external_org_id=ORG, label="Reserve", tier_code="free")
    await client.features.set_access(
        company_id=result.company_id, feature_code="ai_credit", quantity_limit=limit
    )
    return result.company_id


async def server_usage(client: AsyncChatarminOS, company_id: str) -> int:
    assert await client.flush(timeout=30) == 0
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    return access.current_usage


async def test_a_commit_meters_once_with_the_reservations_key(client: AsyncChatarminOS) -> None:
    company = await company_with_limit(client, 10)
    reservation = await client.billing.reserve(
        company_id=company, feature_code="ai_credit", quantity=3, idempotency_key="job-1"
    )
    assert isinstance(reservation, AsyncReservation)
    assert (reservation.remaining, reservation.idempotency_key) == (7, "job-1")
    await reservation.commit(2)
    await reservation.commit()
    assert await server_usage(client, company) == 2
    # the same key again (a retried job): the server counts it once
    again = await client.billing.reserve(
        company_id=company, feature_code="ai_credit", quantity=2, idempotency_key="job-1"
    )
    await again.commit()
    assert await server_usage(client, company) == 2


async def test_as_a_context_it_commits_or_releases(client: AsyncChatarminOS) -> None:
    company = await company_with_limit(client, 2)
    async with client.billing.reserve(external_org_id=ORG, feature_code="ai_credit") as held:
        assert held.state == "held"
    assert held.state == "committed"
    with pytest.raises(RuntimeError, match="work failed"):
        async with client.billing.reserve(company_id=company, feature_code="ai_credit") as r:
            raise RuntimeError("the work failed")
    assert r.state == "released"
    assert await server_usage(client, company) == 1
    last = await client.billing.reserve(company_id=company, feature_code="ai_credit")
    assert last.remaining == 0
    await last.release()


async def test_concurrent_holds_never_pass_the_limit(client: AsyncChatarminOS) -> None:
    company = await company_with_limit(client, 20)

    async def one(index: int) -> bool:
        try:
            reservation = await client.billing.reserve(
                company_id=company, feature_code="ai_credit", idempotency_key=f"req-{index}"
            )
        except PreconditionFailedError:
            return False
        if index % 3 == 0:
            await reservation.release()
            return False
        await reservation.commit()
        return True

    results = await arun_all(*[lambda i=i: one(i) for i in range(60)])
    assert all(isinstance(result, bool) for result in results), results
    assert sum(results) == 20
    assert await server_usage(client, company) == 20


async def test_refusals_are_the_errors_track_usage_raises(client: AsyncChatarminOS) -> None:
    company = await company_with_limit(client, 1)
    await (await client.billing.reserve(company_id=company, feature_code="ai_credit")).commit()
    with pytest.raises(PreconditionFailedError, match="1 requested, 0 of 1 left"):
        await client.billing.reserve(company_id=company, feature_code="ai_credit")
    await client.features.set_access(company_id=company, feature_code="sso", is_enabled=False)
    with pytest.raises(PermissionDeniedError) as caught:
        await client.billing.reserve(company_id=company, feature_code="sso")
    assert isinstance(caught.value, ForbiddenError)
    with pytest.raises(NotFoundError):
        await client.billing.reserve(external_org_id="org_nobody", feature_code="ai_credit")
    with pytest.raises(NotFoundError):
        await client.billing.reserve(company_id="comp_nobody", feature_code="ai_credit")
    with pytest.raises(InvalidInputError):
        await client.billing.reserve(company_id=company, feature_code="ai_credit", quantity=0)


async def test_unlimited_features_hold_nothing_and_still_meter(client: AsyncChatarminOS) -> None:
    company = await company_with_limit(client, None)
    reservation = await client.billing.reserve(
        company_id=company, feature_code="ai_credit", quantity=500
    )
    assert (reservation.state, reservation.remaining) == ("unlimited", None)
    await reservation.commit()
    assert await server_usage(client, company) == 500


async def test_a_server_refusal_of_a_commit_makes_the_next_hold_ask_again(
    client: AsyncChatarminOS,
) -> None:
    company = await company_with_limit(client, 5)
    first = await client.billing.reserve(company_id=company, feature_code="ai_credit", quantity=2)
    # usage the ledger does not know of (another product, a script): the server refuses
    await client.billing.track_usage(company_id=company, feature_code="ai_credit", quantity=4)
    await first.commit()
    assert await server_usage(client, company) == 4  # the commit was refused by the server
    with pytest.raises(PreconditionFailedError):
        await client.billing.reserve(company_id=company, feature_code="ai_credit", quantity=2)
    assert (
        await client.billing.reserve(company_id=company, feature_code="ai_credit")
    ).remaining == 0


async def test_copies_share_the_ledger_and_options_are_checked(engine: LocalEngine) -> None:
    with pytest.raises(Exception, match="hold_timeout"):
        ReservationOptions(hold_timeout=0)
    options = ReservationOptions(hold_timeout=5)
    async with AsyncChatarminOS.local(engine, reservations=options) as client:
        company = await company_with_limit(client, 2)
        copy = client.with_options(timeout=5)
        await client.billing.reserve(company_id=company, feature_code="ai_credit", quantity=2)
        with pytest.raises(PreconditionFailedError):
            await copy.billing.reserve(company_id=company, feature_code="ai_credit")
