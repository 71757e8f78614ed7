"""The entitlement cache and the usage buffer together: buffered usage keeps cached quotas exact."""

from __future__ import annotations

from chatarmin_os import AsyncChatarminOS, UsageBufferOptions
from chatarmin_os.local import LocalEngine


async def test_buffered_usage_updates_the_cached_quota() -> None:
    engine = LocalEngine()
    async with AsyncChatarminOS.local(
        engine, cache=True, usage_buffer=UsageBufferOptions(flush_interval=0.01)
    ) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        company_id = onboarded.company_id
        first = await client.features.check(company_id=company_id, feature_code="ai_credit")
        assert (first.source, first.remaining) == ("live", 100)

        for _ in range(3):
            await client.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=2
            )
        assert await client.flush(timeout=30) == 0

        after = await client.features.check(company_id=company_id, feature_code="ai_credit")
        assert (after.source, after.current_usage, after.remaining) == ("cache", 6, 94)


async def test_a_batch_updates_the_cache_once_with_its_latest_usage() -> None:
    async with AsyncChatarminOS.local(
        cache=True,
        usage_buffer=UsageBufferOptions(flush_interval=3600),  # sent on flush
    ) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        company_id = onboarded.company_id
        await client.features.check(company_id=company_id, feature_code="ai_credit")
        for quantity in (1, 2, 3):
            await client.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=quantity
            )
        assert await client.flush(timeout=30) == 0
        assert client.cache is not None and client.cache.stats().usage_updates == 1
        after = await client.features.check(company_id=company_id, feature_code="ai_credit")
        assert (after.source, after.current_usage, after.remaining) == ("cache", 6, 94)


async def test_a_buffered_event_over_the_limit_expires_the_cached_entry() -> None:
    refused: list[str] = []
    async with AsyncChatarminOS.local(
        cache=True,
        usage_buffer=UsageBufferOptions(
            flush_interval=0.01, on_error=lambda event, error: refused.append(str(error.code))
        ),
    ) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        company_id = onboarded.company_id
        await client.features.check(company_id=company_id, feature_code="ai_credit")
        await client.billing.track_usage_later(
            company_id=company_id, feature_code="ai_credit", quantity=1000
        )
        assert await client.flush(timeout=30) == 0
        again = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert refused == ["PRECONDITION_FAILED"]
    assert again.source == "live"  # the refusal expired the entry: the check asked
