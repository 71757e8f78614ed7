"""The entitlement cache (``cache=``): hits and misses with the exact requests sent, TTL and
LRU, usage-aware updates and the margin rule, invalidation by each write, stale and fallback
answers, ``track_usage(external_org_id=...)``, copies, stats and logs.

Every client here talks to the local ChatarminOS through a recording transport and runs on a
clock moved by hand (no sleeping). Concurrency, fork, background refresh, Redis and the
HTTP server are in ``tests/test_cache_*.py``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pydantic
import pytest

from chatarmin_os import (
    APIConnectionError,
    AsyncChatarminOS,
    AuthenticationError,
    BadRequestError,
    CacheOptions,
    CacheStats,
    Company,
    FeatureAccess,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
)
from chatarmin_os.local.engine import DEFAULT_API_KEY
from chatarmin_os.testing import LocalChatarminOS
from tests.support.cache_harness import Clock, Recorder
from tests.support.canned import UNMETERED_ACCESS
from tests.support.helpers import trpc_error

BASE_URL = LocalChatarminOS().base_url
AI = "ai_credit"


def make(server: Recorder, clock: Clock, **options: Any) -> AsyncChatarminOS:
    """A client of ``server`` with a cache on ``clock`` (no jitter, no retries)."""
    options.setdefault("jitter", 0)
    client = AsyncChatarminOS(
        api_key=DEFAULT_API_KEY,
        base_url=BASE_URL,
        max_retries=0,
        cache=CacheOptions(clock=clock, **options),
    )
    client._own_pool(lambda: httpx.AsyncClient(transport=httpx.MockTransport(server)))
    return client


@pytest.fixture
def server() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(server: Recorder, clock: Clock) -> AsyncIterator[AsyncChatarminOS]:
    async with make(server, clock) as client:
        yield client


def stats(client: AsyncChatarminOS) -> CacheStats:
    assert client.cache is not None
    return client.cache.stats()


# -- hits and misses -----------------------------------------------------------------------


async def test_without_cache_every_call_asks_and_says_live(server: Recorder) -> None:
    company_id = server.company()
    client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, max_retries=0)
    client._own_pool(lambda: httpx.AsyncClient(transport=httpx.MockTransport(server)))
    async with client:
        assert client.cache is None
        first = await client.features.check(company_id=company_id, feature_code=AI)
        second = await client.features.check(company_id=company_id, feature_code=AI)
    assert server.take() == ["features.check", "features.check"]
    assert (first.source, second.source) == ("live", "live")


async def test_a_check_is_asked_once_then_answered_from_the_cache(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    first = await client.features.check(company_id=company_id, feature_code=AI)
    second = await client.features.check(company_id=company_id, feature_code=AI)
    third = await client.features.check(company_id=company_id, feature_code=AI)
    assert server.take() == ["features.check"]
    assert server.inputs == [{"companyId": company_id, "featureCode": AI}]
    assert (first.source, second.source, third.source) == ("live", "cache", "cache")
    assert first == second  # the same figures; equality ignores where they came from
    assert second is third  # hits hand out the one frozen answer
    assert (second.is_enabled, second.remaining, second.quantity_limit) == (True, 100, 100)
    with pytest.raises(pydantic.ValidationError):  # frozen: nobody changes what others read
        second.remaining = 5  # type: ignore[misc]
    assert stats(client) == CacheStats(hits=2, misses=1, entries=1)


async def test_keys_are_company_and_feature(client: AsyncChatarminOS, server: Recorder) -> None:
    acme, globex = server.company("org_1"), server.company("org_2")
    for company_id in (acme, globex, acme, globex):
        for feature in (AI, "team_seats"):
            await client.features.check(company_id=company_id, feature_code=feature)
    assert server.take() == ["features.check"] * 4
    assert [tuple(i.values()) for i in server.inputs] == [
        (acme, AI),
        (acme, "team_seats"),
        (globex, AI),
        (globex, "team_seats"),
    ]


async def test_an_entry_expires_after_its_ttl(
    client: AsyncChatarminOS, server: Recorder, clock: Clock
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    clock.advance(4.99)
    assert (await client.features.check(company_id=company_id, feature_code=AI)).source == "cache"
    server.call(
        "features.setAccess", {"companyId": company_id, "featureCode": AI, "quantityLimit": 7}
    )
    clock.advance(0.02)  # 5.01 s after it was fetched
    access = await client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.quantity_limit) == ("live", 7)
    assert server.take() == ["features.check", "features.check"]


async def test_jitter_spreads_the_ttl(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock, ttl=10.0, jitter=0.5) as client:
        expiries = []
        for _ in range(20):
            await client.cache.clear()  # type: ignore[union-attr]
            await client.features.check(company_id=company_id, feature_code=AI)
            expiries.append(client.cache._entries[("c", company_id, AI)].fresh_until - clock.now)  # type: ignore[union-attr]
    assert all(5.0 <= e <= 15.0 for e in expiries), expiries
    assert len(set(expiries)) > 10  # spread, not one value


async def test_the_least_recently_used_entry_goes_first(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock, max_entries=2) as client:

        async def check(feature: str) -> str:
            return (await client.features.check(company_id=company_id, feature_code=feature)).source

        assert [await check(f) for f in (AI, "team_seats", AI, "sso")] == [
            "live",
            "live",
            "cache",
            "live",  # evicts team_seats, the least recently used
        ]
        assert [await check(f) for f in (AI, "sso", "team_seats")] == ["cache", "cache", "live"]
        assert stats(client).evictions == 2
        assert stats(client).entries == 2


async def test_lists_orgs_and_mappings_are_cached_as_copies(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    listed = await client.features.list_access(company_id)
    org = await client.features.get_access_by_external_org_id("org_1")
    company = await client.companies.get_by_product_link(external_org_id="org_1")
    unknown = await client.companies.get_by_product_link(external_org_id="org_unknown")
    assert server.take() == [
        "features.listAccess",
        "features.getAccessByExternalOrgId",
        "companies.getByProductLink",
        "companies.getByProductLink",
    ]
    assert {f.provenance for f in listed} == {"live"} and org.provenance == "live"
    listed.clear()  # the caller's list, not the cache's
    org.features.clear()
    assert company is not None
    company.name = "Changed by the caller"
    again = await client.features.list_access(company_id)
    org_again = await client.features.get_access_by_external_org_id("org_1")
    company_again = await client.companies.get_by_product_link(external_org_id="org_1")
    assert await client.companies.get_by_product_link(external_org_id="org_unknown") is None
    assert server.take() == []  # None is cached too
    assert len(again) == 7 and {f.provenance for f in again} == {"cache"}
    assert len(org_again.features) == 7 and org_again.provenance == "cache"
    assert org_again.company_id == company_id
    assert isinstance(company_again, Company) and company_again.name == "Acme"
    assert unknown is None


# -- by org id -----------------------------------------------------------------------------


async def test_check_by_org_learns_the_company_and_shares_the_entry(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    first = await client.features.check_by_external_org_id("org_1", AI)
    assert sorted(server.take()) == ["companies.getByProductLink", "features.checkByExternalOrgId"]
    second = await client.features.check_by_external_org_id("org_1", AI)
    by_company = await client.features.check(company_id=company_id, feature_code=AI)
    other = await client.features.check_by_external_org_id("org_1", "sso")
    assert server.take() == ["features.checkByExternalOrgId"]  # the org's company is known now
    assert (first.source, second.source, by_company.source, other.source) == (
        "live",
        "cache",
        "cache",
        "live",
    )
    assert second is by_company


async def test_track_usage_by_org_is_one_round_trip_after_a_check(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.features.check_by_external_org_id("org_1", AI)
    server.take()
    usage = await client.billing.track_usage(
        external_org_id="org_1", feature_code=AI, quantity=2, idempotency_key="k1"
    )
    assert server.take() == ["billing.trackUsage"]
    assert server.inputs[-1] == {
        "companyId": company_id,
        "featureCode": AI,
        "quantity": 2,
        "idempotencyKey": "k1",
    }
    assert usage.remaining == 98
    server.local.assert_usage(company_id, AI, 2)


async def test_track_usage_by_org_looks_the_company_up_once(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    server.company()
    for _ in range(2):
        await client.billing.track_usage(external_org_id="org_1", feature_code=AI, quantity=1)
    assert server.take() == [
        "companies.getByProductLink",
        "billing.trackUsage",
        "billing.trackUsage",
    ]


async def test_track_usage_for_an_unlinked_org_sends_nothing(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.billing.track_usage(external_org_id="org_nobody", feature_code=AI, quantity=1)
    assert server.take() == ["companies.getByProductLink"]
    error = info.value
    assert (error.status_code, error.code, error.path) == (
        404,
        "NOT_FOUND",
        "companies.getByProductLink",
    )
    assert str(error) == (
        "404 NOT_FOUND on companies.getByProductLink: No company is linked to external_org_id "
        "'org_nobody'; nothing was tracked."
    )


@pytest.mark.parametrize(
    "ids",
    [{}, {"company_id": "c1", "external_org_id": "org_1"}, {"company_id": None}],
    ids=["neither", "both", "none"],
)
async def test_track_usage_takes_exactly_one_of_company_and_org(
    client: AsyncChatarminOS, server: Recorder, ids: dict[str, Any]
) -> None:
    with pytest.raises(
        InvalidInputError, match="give exactly one of company_id and external_org_id"
    ):
        await client.billing.track_usage(feature_code=AI, quantity=1, **ids)
    with pytest.raises(InvalidInputError, match="quantity"):
        await client.billing.track_usage(external_org_id="org_1", feature_code=AI, quantity=0)
    assert server.take() == []


# -- usage ---------------------------------------------------------------------------------


async def test_track_usage_makes_cached_entries_exact_without_a_request(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    await client.features.check_by_external_org_id("org_1", AI)
    await client.features.list_access(company_id)
    await client.features.get_access_by_external_org_id("org_1")
    await client.features.check(company_id=company_id, feature_code="team_seats")
    server.take()
    usage = await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=30)
    assert server.take() == ["billing.trackUsage"]
    access = await client.features.check(company_id=company_id, feature_code=AI)
    by_org = await client.features.check_by_external_org_id("org_1", AI)
    [listed] = [f for f in await client.features.list_access(company_id) if f.feature_code == AI]
    [org] = [
        f
        for f in (await client.features.get_access_by_external_org_id("org_1")).features
        if f.feature_code == AI
    ]
    seats = await client.features.check(company_id=company_id, feature_code="team_seats")
    assert server.take() == []
    for answer in (access, by_org, listed, org):
        assert (answer.current_usage, answer.remaining, answer.can_use) == (30, 70, True)
        assert answer.provenance == "cache"
    assert (usage.current_usage, usage.remaining) == (30, 70)
    assert seats.current_usage == 0
    assert stats(client).usage_updates == 1


async def test_usage_to_the_limit_makes_can_use_false(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=100)
    server.take()
    access = await client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.remaining, access.can_use) == ("cache", 0, False)
    assert server.take() == []  # exhausted is not "near the limit": it stays cached


async def test_a_duplicate_answer_expires_the_entry(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.billing.track_usage(
        company_id=company_id, feature_code=AI, quantity=5, idempotency_key="same"
    )
    await client.features.check(company_id=company_id, feature_code=AI)
    server.call("billing.trackUsage", {"companyId": company_id, "featureCode": AI, "quantity": 10})
    duplicate = await client.billing.track_usage(
        company_id=company_id, feature_code=AI, quantity=5, idempotency_key="same"
    )
    assert duplicate.duplicate and duplicate.current_usage == 5  # the first call's figures
    server.take()
    access = await client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.current_usage) == ("live", 15)


async def test_the_margin_rule_sends_checks_near_the_limit_to_the_server(
    server: Recorder, clock: Clock
) -> None:
    company_id = server.company(tier=None, limits={AI: 100})
    async with make(server, clock, margin=0.05) as client:

        async def check() -> FeatureAccess:
            return await client.features.check(company_id=company_id, feature_code=AI)

        await check()
        await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=94)
        server.take()
        assert ((await check()).source, (await check()).remaining) == ("cache", 6)
        await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=1)
        server.take()
        near = [await check(), await check()]  # 5 left: ceil(5 % of 100) = 5 -> ask
        assert [a.source for a in near] == ["live", "live"] and near[0].remaining == 5
        assert server.take() == ["features.check", "features.check"]
        await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=5)
        server.take()
        assert ((await check()).source, (await check()).remaining) == ("cache", 0)
        assert server.take() == []


async def test_margin_zero_answers_from_the_cache_to_the_last_unit(
    server: Recorder, clock: Clock
) -> None:
    company_id = server.company(tier=None, limits={AI: 10})
    async with make(server, clock, margin=0) as client:
        await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=9)
        await client.features.check(company_id=company_id, feature_code=AI)
        server.take()
        access = await client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.remaining) == ("cache", 1)
    assert server.take() == []


@pytest.mark.parametrize("refusal", ["limit", "disabled"])
async def test_a_refused_usage_sends_the_next_check_to_the_server(
    client: AsyncChatarminOS, server: Recorder, refusal: str
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    # Behind this client's back: the usage grows, or the feature is turned off.
    if refusal == "limit":
        server.call(
            "billing.trackUsage", {"companyId": company_id, "featureCode": AI, "quantity": 99}
        )
        expected: type[Exception] = PreconditionFailedError
    else:
        server.call(
            "features.setAccess", {"companyId": company_id, "featureCode": AI, "isEnabled": False}
        )
        expected = PermissionDeniedError
    assert (await client.features.check(company_id=company_id, feature_code=AI)).remaining == 100
    with pytest.raises(expected):
        await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=5)
    server.take()
    access = await client.features.check(company_id=company_id, feature_code=AI)
    assert access.source == "live"
    assert server.take() == ["features.check"]
    if refusal == "limit":
        assert access.remaining == 1
    else:
        assert access.is_enabled is False


async def test_record_usage_is_the_one_entry_point_for_usage_results(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    """What a usage buffer calls with the answers of the events it sent."""
    from chatarmin_os import UsageResult

    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    assert client.cache is not None
    result = UsageResult(
        feature_code=AI,
        current_usage=40,
        quantity_limit=100,
        included_quantity=100,
        remaining=60,
        billable_quantity=0,
        is_at_limit=False,
    )
    await client.cache.record_usage(company_id, result)
    older = result.model_copy(update={"current_usage": 39, "remaining": 61})
    access = await client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.remaining) == ("cache", 60)
    await client.cache.record_usage(company_id, older)  # arrived late: cannot be trusted
    server.take()
    assert (await client.features.check(company_id=company_id, feature_code=AI)).source == "live"


# -- our own writes invalidate -------------------------------------------------------------

Write = Callable[[AsyncChatarminOS, str], Any]


async def _set_access(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.features.set_access(
        company_id=company_id, feature_code=AI, quantity_limit=500
    )


async def _set_access_by_org(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.features.set_access(
        external_org_id="org_1", feature_code=AI, quantity_limit=500
    )


async def _apply_tier(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.tiers.apply(
        "pro", company_id=company_id, features={AI: {"max_quantity": 500}}
    )


async def _create_subscription(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.subscriptions.create(
        "pro", company_id=company_id, features={AI: {"max_quantity": 500}}
    )


async def _claim_checkout(client: AsyncChatarminOS, company_id: str) -> Any:
    await client.billing.claim_checkout(
        company_id=company_id, checkout_session_id="cs_test_pro_completed"
    )
    return await _set_access(client, company_id)  # pro's limit is 10,000: make it 500


async def _link_subscription(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.billing.link_subscription(
        company_id=company_id, stripe_subscription_id="sub_test_existing_pro", tier_code="pro"
    )


async def _onboard(client: AsyncChatarminOS, company_id: str) -> Any:
    return await client.onboard(external_org_id="org_1", label="Test", tier_code="pro")


WRITES: dict[str, tuple[Write, int]] = {
    "set_access": (_set_access, 500),
    "set_access_by_org": (_set_access_by_org, 500),
    "tiers.apply": (_apply_tier, 500),
    "subscriptions.create": (_create_subscription, 500),
    "claim_checkout": (_claim_checkout, 500),
    "link_subscription": (_link_subscription, 10_000),
    "onboard": (_onboard, 10_000),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_each_write_drops_the_companys_entries_before_it_returns(
    client: AsyncChatarminOS, server: Recorder, write: str
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    await client.features.check_by_external_org_id("org_1", AI)
    await client.features.list_access(company_id)
    await client.features.get_access_by_external_org_id("org_1")
    assert stats(client).entries == 4  # check, mapping, list, org
    action, limit = WRITES[write]
    await action(client, company_id)
    server.take()
    access = await client.features.check(company_id=company_id, feature_code=AI)
    listed = await client.features.list_access(company_id)
    org = await client.features.get_access_by_external_org_id("org_1")
    assert (access.source, access.quantity_limit) == ("live", limit)
    assert [f.quantity_limit for f in listed if f.feature_code == AI] == [limit]
    assert [f.quantity_limit for f in org.features if f.feature_code == AI] == [limit]
    assert server.take() == [
        "features.check",
        "features.listAccess",
        "features.getAccessByExternalOrgId",
    ]


async def test_links_create_drops_the_orgs_cached_mapping(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company("org_1")
    assert await client.companies.get_by_product_link(external_org_id="org_2") is None
    await client.links.create(company_id=company_id, external_org_id="org_2")
    server.take()
    found = await client.companies.get_by_product_link(external_org_id="org_2")
    assert found is not None and found.id == company_id
    assert server.take() == ["companies.getByProductLink"]


async def test_links_reset_drops_every_mapping(client: AsyncChatarminOS, server: Recorder) -> None:
    company_id = server.company("org_1")
    await client.companies.get_by_product_link(external_org_id="org_1")
    await client.features.get_access_by_external_org_id("org_1")
    await client.features.check(company_id=company_id, feature_code=AI)
    await client.links.reset()
    server.take()
    assert await client.companies.get_by_product_link(external_org_id="org_1") is None
    with pytest.raises(NotFoundError):
        await client.features.get_access_by_external_org_id("org_1")
    assert (await client.features.check(company_id=company_id, feature_code=AI)).source == "cache"
    assert server.take() == ["companies.getByProductLink", "features.getAccessByExternalOrgId"]


@pytest.mark.parametrize("how", ["companies.create", "smart_link", "onboard"])
async def test_linking_an_org_drops_its_cached_none(
    client: AsyncChatarminOS, server: Recorder, how: str
) -> None:
    if how == "smart_link":
        server.local.add_company("Acme", domain="acme.example")
    assert await client.companies.get_by_product_link(external_org_id="org_new") is None
    if how == "companies.create":
        await client.companies.create(name="New", external_org_id="org_new", label="Test")
    elif how == "smart_link":
        linked = await client.companies.smart_link(
            external_org_id="org_new", label="Test", hints={"domain": "acme.example"}
        )
        assert linked.status == "linked"
    else:
        await client.onboard(external_org_id="org_new", label="Test")
    server.take()
    assert await client.companies.get_by_product_link(external_org_id="org_new") is not None
    assert server.take() == ["companies.getByProductLink"]


async def test_companies_update_drops_the_mappings_holding_the_old_name(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.companies.get_by_product_link(external_org_id="org_1")
    await client.companies.update(company_id=company_id, name="Acme Renamed")
    found = await client.companies.get_by_product_link(external_org_id="org_1")
    assert found is not None and found.name == "Acme Renamed"


async def test_a_write_that_failed_still_drops(client: AsyncChatarminOS, server: Recorder) -> None:
    """It may have been applied before the answer was lost."""
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    server.failure = httpx.ReadError("connection reset")
    with pytest.raises(APIConnectionError):
        await client.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=1)
    server.failure = None
    server.take()
    assert (await client.features.check(company_id=company_id, feature_code=AI)).source == "live"


async def test_a_refused_input_drops_nothing_and_sends_nothing(
    client: AsyncChatarminOS, server: Recorder
) -> None:
    company_id = server.company()
    await client.features.check(company_id=company_id, feature_code=AI)
    server.take()
    with pytest.raises(InvalidInputError):
        await client.features.set_access(company_id=company_id, feature_code="", is_enabled=True)
    assert (await client.features.check(company_id=company_id, feature_code=AI)).source == "cache"
    assert server.take() == []


async def test_invalidate_and_clear(client: AsyncChatarminOS, server: Recorder) -> None:
    company_id = server.company()
    cache = client.cache
    assert cache is not None
    await client.features.check(company_id=company_id, feature_code=AI)
    await client.companies.get_by_product_link(external_org_id="org_1")
    await cache.invalidate(company_id=company_id)
    assert stats(client).entries == 1  # the mapping stays
    await cache.invalidate(external_org_id="org_1")
    assert stats(client).entries == 0
    await client.features.check(company_id=company_id, feature_code=AI)
    await cache.clear()
    assert stats(client).entries == 0


# -- outages: stale and fallback -----------------------------------------------------------

OUTAGES = {
    "connection refused": httpx.ConnectError("refused"),
    "timeout": httpx.ReadTimeout("slow"),
    "503": trpc_error("SERVICE_UNAVAILABLE", 503),
    "500 HTML": httpx.Response(500, text="<html>oops</html>"),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
async def test_an_expired_entry_answers_stale_while_the_server_is_out(
    client: AsyncChatarminOS, server: Recorder, clock: Clock, outage: str
) -> None:
    company_id = server.company()
    fresh = await client.features.check(company_id=company_id, feature_code=AI)
    clock.advance(60)
    server.failure = OUTAGES[outage]
    server.take()
    stale = await client.features.check(company_id=company_id, feature_code=AI)
    assert server.take() == ["features.check"]  # tried once, failed
    assert stale.source == "stale" and stale == fresh
    again = await client.features.check(company_id=company_id, feature_code=AI)
    assert again.source == "stale"
    assert server.take() == []  # while the outage lasts, no request for it
    assert stats(client).stale == 2


async def test_stale_is_bounded_by_max_stale(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock, max_stale=30) as client:
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(29)
        server.failure = httpx.ConnectError("refused")
        assert (
            await client.features.check(company_id=company_id, feature_code=AI)
        ).source == "stale"
        clock.advance(2)  # 31 s old
        with pytest.raises(APIConnectionError):
            await client.features.check(company_id=company_id, feature_code=AI)


async def test_fallback_policies_answer_when_nothing_is_cached(
    server: Recorder, clock: Clock
) -> None:
    company_id = server.company()
    fixed = {
        "is_enabled": True,
        "can_use": True,
        "has_quantity": True,
        "quantity_limit": 10,
        "remaining": 10,
    }
    async with make(
        server, clock, fallback={AI: "open", "sso": "closed", "team_seats": fixed}
    ) as client:
        server.failure = trpc_error("INTERNAL_SERVER_ERROR", 500)
        opened = await client.features.check(company_id=company_id, feature_code=AI)
        closed = await client.features.check(company_id=company_id, feature_code="sso")
        seats = await client.features.check_by_external_org_id("org_1", "team_seats")
        with pytest.raises(InternalServerError):
            await client.features.check(company_id=company_id, feature_code="api_access")
    assert opened.model_dump() == {
        "feature_code": AI,
        "is_enabled": True,
        "can_use": True,
        "has_quantity": False,
        "current_usage": 0,
        "quantity_limit": None,
        "included_quantity": None,
        "remaining": None,
    }
    assert (opened.source, closed.source, seats.source) == ("fallback",) * 3
    assert (closed.is_enabled, closed.can_use) == (False, False)
    assert (seats.feature_code, seats.remaining, seats.quantity_limit) == ("team_seats", 10, 10)


async def test_a_default_policy_for_every_feature(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock, fallback={"*": "closed", "sso": "open"}) as client:
        server.failure = httpx.ConnectError("refused")
        answers = [
            await client.features.check(company_id=company_id, feature_code=f)
            for f in (AI, "sso", "anything")
        ]
    assert [(a.feature_code, a.is_enabled, a.source) for a in answers] == [
        (AI, False, "fallback"),
        ("sso", True, "fallback"),
        ("anything", False, "fallback"),
    ]
    assert stats(client).fallback == 3


async def test_stale_wins_over_fallback_and_by_org_too(server: Recorder, clock: Clock) -> None:
    server.company()
    async with make(server, clock, fallback="closed") as client:
        cached = await client.features.check_by_external_org_id("org_1", AI)
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        stale = await client.features.check_by_external_org_id("org_1", AI)
        other = await client.features.check_by_external_org_id("org_1", "sso")
        unknown = await client.features.check_by_external_org_id("org_2", AI)
    assert (stale.source, stale.remaining) == ("stale", cached.remaining)
    assert (other.source, other.is_enabled) == ("fallback", False)
    assert (unknown.source, unknown.is_enabled) == ("fallback", False)


async def test_lists_orgs_and_mappings_answer_stale_but_never_fall_back(
    server: Recorder, clock: Clock
) -> None:
    company_id = server.company()
    async with make(server, clock, fallback="open") as client:
        await client.features.list_access(company_id)
        await client.features.get_access_by_external_org_id("org_1")
        await client.companies.get_by_product_link(external_org_id="org_1")
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        listed = await client.features.list_access(company_id)
        org = await client.features.get_access_by_external_org_id("org_1")
        company = await client.companies.get_by_product_link(external_org_id="org_1")
        with pytest.raises(APIConnectionError):
            await client.features.list_access("another-company")
    assert {f.provenance for f in listed} == {"stale"} and org.provenance == "stale"
    assert {f.provenance for f in org.features} == {"stale"}
    assert company is not None and company.id == company_id


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (trpc_error("UNAUTHORIZED", 401), AuthenticationError),
        (trpc_error("BAD_REQUEST", 400), BadRequestError),
        (trpc_error("FORBIDDEN", 403), PermissionDeniedError),
        (trpc_error("TOO_MANY_REQUESTS", 429), RateLimitError),
    ],
    ids=["401", "400", "403", "429"],
)
async def test_errors_that_are_not_outages_never_answer_from_the_cache(
    server: Recorder, clock: Clock, answer: httpx.Response, error: type[Exception]
) -> None:
    company_id = server.company()
    async with make(server, clock, fallback="open") as client:
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = answer
        with pytest.raises(error):  # an expired entry is there: not used
            await client.features.check(company_id=company_id, feature_code=AI)
        with pytest.raises(error):  # a fallback policy is there: not used
            await client.features.check(company_id=company_id, feature_code="sso")
        assert stats(client).stale == stats(client).fallback == 0


async def test_bad_input_is_refused_during_an_outage_too(server: Recorder, clock: Clock) -> None:
    async with make(server, clock, fallback="open") as client:
        server.failure = httpx.ConnectError("refused")
        with pytest.raises(InvalidInputError, match="company_id"):
            await client.features.check(company_id=" ", feature_code=AI)
        with pytest.raises(InvalidInputError, match="feature_code"):
            await client.features.check_by_external_org_id("org_1", "")
        with pytest.raises(InvalidInputError, match="company_id"):
            await client.features.check(company_id=["c1"], feature_code=AI)  # type: ignore[arg-type]
    assert server.take() == []


async def test_the_outage_ends_when_a_request_succeeds(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock) as client:
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        assert (
            await client.features.check(company_id=company_id, feature_code=AI)
        ).source == "stale"
        server.failure = None
        # Nothing cached for sso and no fallback: it asks, and that success ends the outage.
        assert (
            await client.features.check(company_id=company_id, feature_code="sso")
        ).source == "live"
        server.take()
        access = await client.features.check(company_id=company_id, feature_code=AI)
    assert access.source == "live"
    assert server.take() == ["features.check"]


# -- copies, products, logs ----------------------------------------------------------------


async def test_copies_share_the_cache_of_their_product(server: Recorder, clock: Clock) -> None:
    company_id = server.company()
    async with make(server, clock) as client:
        patient = client.with_options(timeout=60.0)
        assert patient.cache is client.cache
        await client.features.check(company_id=company_id, feature_code=AI)
        assert (
            await patient.features.check(company_id=company_id, feature_code=AI)
        ).source == "cache"
        other = client.with_options(api_key="os_sk_other_product")
        assert other.cache is not None and other.cache is not client.cache
        assert other.cache.stats().entries == 0
        assert "os_sk_other_product" not in repr(other.cache)
        assert DEFAULT_API_KEY not in repr(client.cache)


async def test_hits_misses_and_outages_are_logged_at_debug(
    client: AsyncChatarminOS, server: Recorder, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    company_id = server.company()
    with caplog.at_level(logging.DEBUG, logger="chatarmin_os"):
        await client.features.check(company_id=company_id, feature_code=AI)
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        await client.features.check(company_id=company_id, feature_code=AI)
    messages = [r.getMessage() for r in caplog.records if r.name == "chatarmin_os"]
    assert f"cache: miss check {company_id}/{AI}" in messages
    assert f"cache: hit check {company_id}/{AI}" in messages
    assert f"cache: stale check {company_id}/{AI}" in messages
    assert any(m.startswith("cache: ChatarminOS cannot be reached") for m in messages)
    assert not any(DEFAULT_API_KEY in m for m in messages)


async def test_a_server_may_add_source_to_a_check_answer(clock: Clock) -> None:
    answer = {**UNMETERED_ACCESS, "source": "manual"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"result": {"data": answer}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = AsyncChatarminOS(
            api_key=DEFAULT_API_KEY,
            base_url=BASE_URL,
            http_client=http,
            cache=CacheOptions(clock=clock),
        )
        live = await client.features.check(company_id="c1", feature_code=AI)
        cached = await client.features.check(company_id="c1", feature_code=AI)
        await client.aclose()
    assert (live.source, cached.source) == ("live", "cache")
    assert live.model_extra == {"source": "manual"}
    assert "source" not in FeatureAccess.model_fields
    assert live.model_dump(by_alias=True)["source"] == "manual"  # the server's, not ours
