"""The async client under trio (anyio underneath), retries and sleeping included."""

from __future__ import annotations

from typing import Any

import httpx
import trio
import trio.testing

from chatarmin_os import AsyncChatarminOS, PreconditionFailedError
from chatarmin_os.local import LocalEngine
from tests.support.canned import USAGE_AT_LIMIT
from tests.support.helpers import API_KEY, BASE_URL, ok, trpc_error


def test_async_client_runs_under_trio() -> None:
    answers = [
        trpc_error("SERVICE_UNAVAILABLE", 503, headers={"retry-after-ms": "1"}),
        ok(USAGE_AT_LIMIT),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    async def main() -> tuple[int, float]:
        client = AsyncChatarminOS(
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        started = trio.current_time()
        usage = await client.billing.track_usage(
            company_id="c1", feature_code="ai_credit", quantity=1
        )
        return usage.current_usage, trio.current_time() - started

    # trio's autojump clock skips the 1 ms anyio.sleep between attempts instantly.
    current, elapsed = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert current == 1
    assert len(seen) == 2
    assert seen[0].content == seen[1].content
    assert elapsed >= 0.001


def test_local_client_under_trio() -> None:
    async def main() -> str:
        async with AsyncChatarminOS.local() as client:
            result = await client.onboard(external_org_id="org_t", label="Trio", tier_code="free")
            await client.features.set_access(
                company_id=result.company_id, feature_code="ai_credit", quantity_limit=1
            )
            await client.billing.track_usage(
                company_id=result.company_id, feature_code="ai_credit", quantity=1
            )
            try:
                await client.billing.track_usage(
                    company_id=result.company_id, feature_code="ai_credit", quantity=1
                )
            except PreconditionFailedError as error:
                return str(error.code)
            return "accepted"

    assert trio.run(main) == "PRECONDITION_FAILED"


def _batched_checks(inside_async_with: bool) -> list[str]:
    requests: list[str] = []

    async def main() -> list[str]:
        engine = LocalEngine()
        async with AsyncChatarminOS.local(engine) as setup:
            result = await setup.onboard(external_org_id="org_b", label="Trio", tier_code="pro")
        client = AsyncChatarminOS.local(engine, batching=True)
        answer = client._pool.answer
        assert answer is not None

        def counting(method: str, target: str, headers: Any, body: bytes | None) -> Any:
            requests.append(target.partition("?")[0])
            return answer(method, target, headers, body)

        client._pool.answer = counting
        codes = ["ai_credit", "sso", "api_access", "team_seats"]
        found: list[str] = []

        async def check(code: str) -> None:
            access = await client.features.check(company_id=result.company_id, feature_code=code)
            found.append(access.feature_code)

        async def run_all() -> None:
            async with trio.open_nursery() as nursery:
                for code in codes:
                    nursery.start_soon(check, code)

        if inside_async_with:
            async with client:
                await run_all()
        else:
            await run_all()
        return sorted(found)

    assert trio.run(main) == sorted(["ai_credit", "sso", "api_access", "team_seats"])
    return requests


def test_batching_under_trio_in_async_with() -> None:
    [path] = _batched_checks(inside_async_with=True)
    assert path == "features.check,features.check,features.check,features.check"


def test_batching_under_trio_without_async_with() -> None:
    # No nursery of the client's: the first call of the batch sends it itself.
    [path] = _batched_checks(inside_async_with=False)
    assert path == "features.check,features.check,features.check,features.check"
