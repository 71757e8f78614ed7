"""Concurrent usage tracking through the SDK never passes a limit and never loses a count.

The contract: "Concurrent calls never exceed a limit and never lose a count." Written by
hand for both clients (not generated): the async client runs the calls as tasks of one
anyio task group, the blocking client from a pool of threads sharing one client.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    ChatarminOS,
    PreconditionFailedError,
    Transformer,
    UsageResult,
)
from chatarmin_os.local import LocalEngine

CALLS = 60
QUANTITY = 3
LIMIT = 100
ACCEPTED = LIMIT // QUANTITY  # 33 calls fit (99); the 34th would make 102


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine()
    yield eng
    eng.close()


def _setup(engine: LocalEngine) -> str:
    with ChatarminOS.local(engine) as os:
        company = os.companies.create(name="Busy Co")
        os.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=LIMIT
        )
    return company.id


def _check_outcome(
    engine: LocalEngine,
    company_id: str,
    accepted: list[UsageResult],
    refused: list[BaseException],
    final_usage: int,
) -> None:
    assert len(accepted) + len(refused) == CALLS
    assert all(isinstance(error, PreconditionFailedError) for error in refused), refused
    assert final_usage == QUANTITY * len(accepted)
    assert final_usage <= LIMIT
    # Every accepted call was counted exactly once, none was lost.
    assert len(accepted) == ACCEPTED
    assert sorted(result.current_usage for result in accepted) == [
        QUANTITY * n for n in range(1, ACCEPTED + 1)
    ]
    events = engine.usage_events(company_id, "ai_credit")
    assert len(events) == len(accepted)
    assert sum(event["quantity"] for event in events) == final_usage
    assert len({event["idempotencyKey"] for event in events}) == len(events)


@pytest.mark.parametrize("transformer", ["json", "superjson"])
async def test_async_client_concurrent_track_usage(
    engine: LocalEngine, transformer: Transformer
) -> None:
    company_id = _setup(engine)
    accepted: list[UsageResult] = []
    refused: list[BaseException] = []

    async with AsyncChatarminOS.local(engine, transformer=transformer) as os:

        async def one() -> None:
            try:
                accepted.append(
                    await os.billing.track_usage(
                        company_id=company_id, feature_code="ai_credit", quantity=QUANTITY
                    )
                )
            except PreconditionFailedError as error:
                refused.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(CALLS):
                group.start_soon(one)
        access = await os.features.check(company_id=company_id, feature_code="ai_credit")

    _check_outcome(engine, company_id, accepted, refused, access.current_usage)
    assert access.can_use is (access.current_usage < LIMIT)


@pytest.mark.parametrize("transformer", ["json", "superjson"])
def test_sync_client_concurrent_track_usage_from_threads(
    engine: LocalEngine, transformer: Transformer
) -> None:
    company_id = _setup(engine)
    accepted: list[UsageResult] = []
    refused: list[BaseException] = []

    with ChatarminOS.local(engine, transformer=transformer) as os:

        def one() -> UsageResult:
            return os.billing.track_usage(
                company_id=company_id, feature_code="ai_credit", quantity=QUANTITY
            )

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(one) for _ in range(CALLS)]
        for future in futures:
            error = future.exception()
            if error is None:
                accepted.append(future.result())
            else:
                refused.append(error)
        access = os.features.check(company_id=company_id, feature_code="ai_credit")

    _check_outcome(engine, company_id, accepted, refused, access.current_usage)


def test_threads_calling_the_engine_through_separate_clients(engine: LocalEngine) -> None:
    """One client per thread (separate connection pools) against one engine."""
    company_id = _setup(engine)

    def one(_: int) -> UsageResult | BaseException:
        with ChatarminOS.local(engine) as os:
            try:
                return os.billing.track_usage(
                    company_id=company_id, feature_code="ai_credit", quantity=QUANTITY
                )
            except PreconditionFailedError as error:
                return error

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(one, range(CALLS)))
    accepted = [o for o in outcomes if isinstance(o, UsageResult)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    with ChatarminOS.local(engine) as os:
        final = os.features.check(company_id=company_id, feature_code="ai_credit").current_usage
    _check_outcome(engine, company_id, accepted, refused, final)
