"""The contract's "Semantics" rules, exercised through the SDK against the local ChatarminOS.

Every test runs the real client (its codec, its error mapping) over the in-process transport
against a :class:`LocalEngine` with a fixed clock, once per transformer (``json`` and
``superjson``: the local server answers in whichever the request uses).
"""

from __future__ import annotations

import difflib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chatarmin_os import (
    APIStatusError,
    AsyncChatarminOS,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from tests.helpers import T0, TRANSFORMERS, Clock

OTHER_KEY = "os_sk_other_product"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> Iterator[LocalEngine]:
    eng = LocalEngine(api_keys=(DEFAULT_API_KEY, OTHER_KEY), clock=clock)
    yield eng
    eng.close()


@pytest.fixture(params=TRANSFORMERS)
def transformer(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def client(engine: LocalEngine, transformer: Any) -> AsyncIterator[AsyncChatarminOS]:
    async with AsyncChatarminOS.local(engine, transformer=transformer) as os:
        yield os


async def new_company(os: AsyncChatarminOS, name: str = "Acme Inc", **extra: Any) -> str:
    company = await os.companies.create(name=name, **extra)
    return company.id


async def enable_ai_credit(os: AsyncChatarminOS, company_id: str, **fields: Any) -> None:
    await os.features.set_access(
        company_id=company_id, feature_code="ai_credit", is_enabled=True, **fields
    )


# -- the wire round trip ------------------------------------------------------------------


async def test_timestamps_come_back_as_aware_datetimes(client: AsyncChatarminOS) -> None:
    company = await client.companies.create(name="Acme Inc", domain="acme.com")
    assert company.created_at == T0
    assert company.created_at.tzinfo is not None
    assert company.short_id == "acme-inc"
    historical = await client.companies.create(
        name="Old Co", created_at=datetime(2020, 5, 1, 12, tzinfo=timezone.utc)
    )
    assert historical.created_at == datetime(2020, 5, 1, 12, tzinfo=timezone.utc)


# -- smart linking -------------------------------------------------------------------------


async def test_smart_link_no_match(client: AsyncChatarminOS) -> None:
    await new_company(client, "Acme Inc", domain="acme.com")
    result = await client.companies.smart_link(
        external_org_id="org_1",
        label="My Product",
        hints={"company_name": "Zebra Logistics", "domain": "zebra.io"},
    )
    assert result.status == "no_match"
    assert (result.company_id, result.customer_name, result.confidence) == (None, None, None)
    assert result.suggestions == []
    assert await client.companies.get_by_product_link(external_org_id="org_1") is None
    # No hints at all: nothing to score.
    bare = await client.companies.smart_link(external_org_id="org_2", label="My Product")
    assert bare.status == "no_match"


async def test_smart_link_domain_links_then_already_linked(client: AsyncChatarminOS) -> None:
    acme = await new_company(client, "Acme Inc", domain="Acme.com")
    await new_company(client, "Acme Labs", domain="acmelabs.com")
    result = await client.companies.smart_link(
        external_org_id="org_1",
        label="My Product",
        hints={"company_name": "Something Else", "domain": "ACME.COM"},
    )
    assert result.status == "linked"
    assert result.company_id == acme
    assert result.customer_name == "Acme Inc"
    assert result.confidence == 95.0
    assert result.suggestions == []
    linked = await client.companies.get_by_product_link(external_org_id="org_1")
    assert linked is not None and linked.id == acme

    # The org is linked now: that company, no scoring, whatever the hints say.
    again = await client.companies.smart_link(
        external_org_id="org_1",
        label="My Product",
        hints={"company_name": "Acme Labs", "domain": "acmelabs.com"},
    )
    assert again.status == "already_linked"
    assert (again.company_id, again.customer_name, again.confidence) == (acme, "Acme Inc", 100.0)
    assert again.suggestions == []


async def test_smart_link_name_is_normalised(client: AsyncChatarminOS) -> None:
    acme = await new_company(client, "ACME, Inc.")
    result = await client.companies.smart_link(
        external_org_id="org_1", label="P", hints={"company_name": "acme   GmbH"}
    )
    # Equal after normalisation: similarity 1.0 -> 80 = the default minimum (0.8).
    assert result.status == "linked"
    assert result.company_id == acme
    assert result.confidence == 80.0


async def test_smart_link_email_domain_and_min_confidence(client: AsyncChatarminOS) -> None:
    acme = await new_company(client, "Acme Inc", domain="acme.com")
    below = await client.companies.smart_link(
        external_org_id="org_1",
        label="P",
        hints={"emails": ["bob@ACME.com", "someone@gmail.com"]},
    )
    assert below.status == "suggestions"
    assert below.company_id is None and below.confidence is None
    [suggestion] = below.suggestions
    assert suggestion.company_id == acme
    assert suggestion.name == "Acme Inc"
    assert suggestion.domain == "acme.com"
    assert suggestion.confidence == 70.0
    assert suggestion.matched_by == "email_domain"
    assert await client.companies.get_by_product_link(external_org_id="org_1") is None

    linked = await client.companies.smart_link(
        external_org_id="org_1", label="P", hints={"emails": ["bob@acme.com"]}, min_confidence=0.7
    )
    assert linked.status == "linked"
    assert linked.company_id == acme
    assert linked.confidence == 70.0

    # A domain match (95) is below a minimum of 1.0: suggested, not linked.
    strict = await client.companies.smart_link(
        external_org_id="org_2", label="P", hints={"domain": "acme.com"}, min_confidence=1.0
    )
    assert strict.status == "suggestions"
    assert [(s.company_id, s.confidence, s.matched_by) for s in strict.suggestions] == [
        (acme, 95.0, "domain")
    ]


async def test_smart_link_fuzzy_name_and_threshold(client: AsyncChatarminOS) -> None:
    await new_company(client, "Acme Industries")
    expected = round(
        80 * difflib.SequenceMatcher(None, "acme industry", "acme industries").ratio(), 1
    )
    assert 50 <= expected < 80
    result = await client.companies.smart_link(
        external_org_id="org_1", label="P", hints={"company_name": "Acme Industry"}
    )
    assert result.status == "suggestions"
    assert [(s.confidence, s.matched_by) for s in result.suggestions] == [(expected, "name")]
    relaxed = await client.companies.smart_link(
        external_org_id="org_1",
        label="P",
        hints={"company_name": "Acme Industry"},
        min_confidence=0.5,
    )
    assert relaxed.status == "linked"
    assert relaxed.confidence == expected
    # A name scoring below 50 is not a candidate at all.
    far = await client.companies.smart_link(
        external_org_id="org_2", label="P", hints={"company_name": "Zq"}, min_confidence=0.0
    )
    assert far.status == "no_match"


async def test_smart_link_tie_gives_suggestions(client: AsyncChatarminOS) -> None:
    first = await new_company(client, "Globex", domain="globex.com")
    second = await new_company(client, "Globex Europe", domain="globex.com")
    result = await client.companies.smart_link(
        external_org_id="org_1", label="P", hints={"domain": "globex.com"}, min_confidence=0.1
    )
    assert result.status == "suggestions"
    assert [(s.company_id, s.confidence, s.matched_by) for s in result.suggestions] == [
        (first, 95.0, "domain"),
        (second, 95.0, "domain"),
    ]
    assert await client.companies.get_by_product_link(external_org_id="org_1") is None


async def test_smart_link_at_most_five_suggestions_best_first(client: AsyncChatarminOS) -> None:
    names = ["Acme Cloud", "Acme Clouds", "Acme Clod", "Acme Clo", "Acme Cl", "Acme C"]
    ids = {name: await new_company(client, name) for name in names}
    by_domain = await new_company(client, "Unrelated", domain="acme-cloud.io")
    result = await client.companies.smart_link(
        external_org_id="org_1",
        label="P",
        hints={"company_name": "Acme Cloudy", "domain": "acme-cloud.io"},
        min_confidence=1.0,
    )
    assert result.status == "suggestions"
    assert len(result.suggestions) == 5
    top = result.suggestions[0]
    assert (top.company_id, top.confidence, top.matched_by) == (by_domain, 95.0, "domain")
    scores = {
        name: round(80 * difflib.SequenceMatcher(None, "acme cloudy", name.lower()).ratio(), 1)
        for name in names
    }
    best = sorted(names, key=lambda name: -scores[name])[:4]
    assert [s.company_id for s in result.suggestions[1:]] == [ids[name] for name in best]
    assert [s.confidence for s in result.suggestions[1:]] == [scores[name] for name in best]
    assert all(s.matched_by == "name" for s in result.suggestions[1:])


# -- onboarding ----------------------------------------------------------------------------


async def test_onboard_free_tier(client: AsyncChatarminOS) -> None:
    result = await client.onboard(
        external_org_id="org_free",
        label="My Product",
        hints={"company_name": "Free Co", "domain": "free.example"},
        tier_code="free",
        contact_email="jane@free.example",
        contact_name="Jane Doe",
    )
    assert result.link_status == "created"
    assert result.company_name == "Free Co"
    assert result.billing_status is not None
    assert result.billing_status.tier_applied is True
    assert result.billing_status.claimed is False
    assert result.billing_status.linked is False
    assert result.billing_status.subscription_id is None

    company = await client.companies.get_by_product_link(external_org_id="org_free")
    assert company is not None
    assert (company.id, company.name, company.domain) == (
        result.company_id,
        "Free Co",
        "free.example",
    )
    access = await client.features.check(company_id=result.company_id, feature_code="ai_credit")
    assert (access.is_enabled, access.can_use, access.quantity_limit, access.remaining) == (
        True,
        True,
        100,
        100,
    )
    [contact] = await client.contacts.list(result.company_id)
    assert (contact.email, contact.name, contact.is_primary) == (
        "jane@free.example",
        "Jane Doe",
        True,
    )
    status = await client.billing.get_status(result.company_id)
    assert status.has_billing_profile is False
    assert status.active_subscriptions == []
    assert status.enabled_features_count == 3  # ai_credit, team_seats, api_access


async def test_onboard_claims_checkout(client: AsyncChatarminOS) -> None:
    result = await client.onboard(
        external_org_id="org_checkout",
        label="My Product",
        hints={"company_name": "Checkout Inc", "domain": "checkout.example"},
        checkout_session_id="cs_test_pro_completed",
    )
    assert result.link_status == "created"
    billing = result.billing_status
    assert billing is not None
    assert billing.claimed is True
    assert billing.linked is False
    assert billing.tier_applied is True
    assert billing.subscription_id is not None

    status = await client.billing.get_status(result.company_id)
    assert status.has_billing_profile is True
    [subscription] = status.active_subscriptions
    assert subscription.id == billing.subscription_id
    assert subscription.stripe_subscription_id == "sub_test_pro"
    assert subscription.status == "active"
    assert subscription.tier is not None and subscription.tier.code == "pro"
    assert subscription.current_period_end == datetime(2030, 1, 1, tzinfo=timezone.utc)
    access = await client.features.check(company_id=result.company_id, feature_code="ai_credit")
    assert (access.quantity_limit, access.included_quantity) == (10000, 1000)

    # The session is claimed now: claiming it again for the same company changes nothing.
    again = await client.billing.claim_checkout(
        company_id=result.company_id, checkout_session_id="cs_test_pro_completed"
    )
    assert again.already_claimed is True
    assert again.subscription_id == billing.subscription_id


async def test_onboard_with_own_stripe_subscription(client: AsyncChatarminOS) -> None:
    tier = await client.tiers.get("pro")
    assert tier.stripe_price_ids == ["price_pro_base", "price_pro_ai_credit"]
    result = await client.onboard(
        external_org_id="org_own_stripe",
        label="My Product",
        hints={"company_name": "Own Stripe GmbH"},
        stripe_subscription_id="sub_test_existing_pro",
        stripe_customer_id="cus_test_existing",
        tier_code="pro",
    )
    assert result.link_status == "created"
    billing = result.billing_status
    assert billing is not None
    assert (billing.linked, billing.claimed, billing.tier_applied) == (True, False, True)
    status = await client.billing.get_status(result.company_id)
    assert status.has_billing_profile is True
    [subscription] = status.active_subscriptions
    assert subscription.id == billing.subscription_id
    assert subscription.stripe_subscription_id == "sub_test_existing_pro"
    assert subscription.tier is not None
    assert (subscription.tier.code, subscription.tier.name) == ("pro", "Pro")
    assert status.enabled_features_count == 5


async def test_onboard_existing_customers(client: AsyncChatarminOS) -> None:
    first = await client.onboard(
        external_org_id="org_1",
        label="My Product",
        hints={"company_name": "Acme Inc", "domain": "acme.com"},
        tier_code="free",
        contact_email="john@acme.com",
    )
    assert first.link_status == "created"

    again = await client.onboard(
        external_org_id="org_1", label="My Product", contact_email="jane@acme.com"
    )
    assert again.link_status == "already_linked"
    assert again.company_id == first.company_id
    assert again.company_name == "Acme Inc"
    assert again.billing_status is None
    # The company already has a primary contact: the new one is not primary.
    contacts = await client.contacts.list(first.company_id)
    assert [(c.email, c.is_primary) for c in contacts] == [
        ("john@acme.com", True),
        ("jane@acme.com", False),
    ]

    # Another org of the same customer, found by its domain: linked, no new company.
    other = await client.onboard(
        external_org_id="org_2", label="My Product", hints={"domain": "ACME.com"}
    )
    assert other.link_status == "linked"
    assert other.company_id == first.company_id
    linked = await client.companies.get_by_product_link(external_org_id="org_2")
    assert linked is not None and linked.id == first.company_id


async def test_onboard_name_falls_back_to_domain_then_org_id(client: AsyncChatarminOS) -> None:
    by_domain = await client.onboard(
        external_org_id="org_1", label="P", hints={"domain": "zeta.io"}
    )
    assert (by_domain.link_status, by_domain.company_name) == ("created", "zeta.io")
    by_org = await client.onboard(external_org_id="org_2", label="P")
    assert (by_org.link_status, by_org.company_name) == ("created", "org_2")


async def test_onboard_failing_step_leaves_nothing_behind(
    client: AsyncChatarminOS, engine: LocalEngine
) -> None:
    arguments: dict[str, Any] = {
        "external_org_id": "org_1",
        "label": "My Product",
        "hints": {"company_name": "Acme Inc", "domain": "acme.com"},
        "tier_code": "free",
        "contact_email": "john@acme.com",
    }
    with pytest.raises(NotFoundError) as info:
        await client.onboard(**arguments, checkout_session_id="cs_does_not_exist")
    assert info.value.status_code == 404
    assert info.value.code == "NOT_FOUND"
    assert info.value.path == "onboard"
    assert "cs_does_not_exist" in info.value.message

    assert await client.companies.get_by_product_link(external_org_id="org_1") is None
    probe = await client.companies.smart_link(
        external_org_id="org_probe", label="P", hints={"company_name": "Acme Inc"}
    )
    assert probe.status == "no_match"  # no company was left behind
    assert engine.usage_events() == []

    retry = await client.onboard(**arguments, checkout_session_id="cs_test_pro_completed")
    assert retry.link_status == "created"
    assert retry.billing_status is not None and retry.billing_status.claimed is True
    company = await client.companies.get_by_product_link(external_org_id="org_1")
    assert company is not None
    assert company.id == retry.company_id
    assert company.short_id == "acme-inc"  # the slug of the rolled-back company is free
    [contact] = await client.contacts.list(retry.company_id)
    assert (contact.email, contact.is_primary) == ("john@acme.com", True)


# -- contacts ------------------------------------------------------------------------------


async def test_contacts_upsert_is_case_insensitive(client: AsyncChatarminOS, clock: Clock) -> None:
    company_id = await new_company(client)
    first = await client.contacts.create(
        company_id=company_id,
        email="Alice@Acme.com",
        name="Alice",
        role="CEO",
        metadata={"slackId": "U1"},
    )
    assert first.is_new is True
    assert (first.email, first.name, first.role, first.is_primary) == (
        "Alice@Acme.com",
        "Alice",
        "CEO",
        False,
    )
    assert first.metadata == {"slackId": "U1"}
    assert first.created_at == first.updated_at == T0

    clock.advance(minutes=5)
    second = await client.contacts.create(company_id=company_id, email="alice@ACME.COM", role="CTO")
    assert second.is_new is False
    assert second.id == first.id
    assert second.name == "Alice"  # not given: kept
    assert second.role == "CTO"
    assert second.metadata == {"slackId": "U1"}
    assert second.created_at == T0
    assert second.updated_at == T0 + timedelta(minutes=5)
    assert len(await client.contacts.list(company_id)) == 1


async def test_contacts_one_primary(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    alice = await client.contacts.create(
        company_id=company_id, email="alice@acme.com", is_primary=True
    )
    bob = await client.contacts.create(company_id=company_id, email="bob@acme.com", is_primary=True)
    contacts = await client.contacts.list(company_id)
    assert [(c.id, c.is_primary) for c in contacts] == [(bob.id, True), (alice.id, False)]
    [primary] = await client.contacts.list(company_id, True)
    assert primary.id == bob.id

    result = await client.contacts.bulk_upsert(
        company_id=company_id,
        contacts=[
            {"email": "ALICE@acme.com", "is_primary": True},
            {"email": "carol@acme.com", "name": "Carol"},
        ],
    )
    assert (result.created, result.updated) == (1, 1)
    assert [(c.email, c.is_new, c.is_primary) for c in result.contacts] == [
        ("alice@acme.com", False, True),
        ("carol@acme.com", True, False),
    ]
    primaries = await client.contacts.list(company_id, True)
    assert [c.id for c in primaries] == [alice.id]


# -- feature access ------------------------------------------------------------------------


async def test_feature_access_defaults(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    sso = await client.features.check(company_id=company_id, feature_code="sso")
    assert sso.model_dump() == {
        "feature_code": "sso",
        "is_enabled": False,
        "can_use": False,
        "has_quantity": False,
        "current_usage": 0,
        "quantity_limit": None,
        "included_quantity": None,
        "remaining": None,
    }
    credit = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert credit.has_quantity is True  # metered
    assert (credit.is_enabled, credit.can_use, credit.current_usage) == (False, False, 0)

    details = await client.features.list_access(company_id)
    assert {f.feature_code for f in details} == {
        "ai_credit",
        "team_seats",
        "api_access",
        "sso",
        "priority_support",
        "custom_branding",
        "advanced_analytics",
    }
    assert all(not f.is_enabled and f.valid_until is None for f in details)


async def test_set_access_merges_config_and_records_manual(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client, external_org_id="org_1")
    first = await client.features.set_access(
        company_id=company_id,
        feature_code="team_seats",
        is_enabled=True,
        quantity_limit=10,
        config={"maxSeats": 10, "region": "eu"},
    )
    assert first.source == "manual"  # no source given
    assert first.config_values == {"maxSeats": 10, "region": "eu"}
    assert (first.is_enabled, first.quantity_limit, first.remaining) == (True, 10, 10)

    second = await client.features.set_access(
        external_org_id="org_1", feature_code="team_seats", config={"maxSeats": 50}, source="trial"
    )
    assert second.config_values == {"maxSeats": 50, "region": "eu"}  # merged key by key
    assert second.source == "trial"
    assert second.quantity_limit == 10  # not given: kept
    assert second.is_enabled is True

    third = await client.features.set_access(
        company_id=company_id, feature_code="team_seats", config={"sso": True}
    )
    assert third.source == "manual"
    assert third.config_values == {"maxSeats": 50, "region": "eu", "sso": True}
    by_org = await client.features.get_access_by_external_org_id("org_1")
    assert by_org.company_id == company_id
    [seats] = [f for f in by_org.features if f.feature_code == "team_seats"]
    assert seats.config_values == {"maxSeats": 50, "region": "eu", "sso": True}


async def test_quantity_limit_none_is_unlimited(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    await enable_ai_credit(client, company_id, quantity_limit=5)
    await client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=5)
    at_limit = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert (at_limit.can_use, at_limit.remaining) == (False, 0)

    detail = await client.features.set_access(
        company_id=company_id, feature_code="ai_credit", quantity_limit=None
    )
    assert (detail.quantity_limit, detail.remaining, detail.can_use) == (None, None, True)
    usage = await client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=1000
    )
    assert (usage.current_usage, usage.quantity_limit, usage.remaining) == (1005, None, None)
    assert usage.is_at_limit is False


async def test_valid_until_expiry(client: AsyncChatarminOS, clock: Clock) -> None:
    company_id = await new_company(client)
    until = T0 + timedelta(hours=1)
    detail = await client.features.set_access(
        company_id=company_id, feature_code="sso", is_enabled=True, valid_until=until
    )
    assert detail.valid_until == until
    assert detail.is_enabled is True

    clock.advance(minutes=59)
    assert (await client.features.check(company_id=company_id, feature_code="sso")).is_enabled
    clock.advance(minutes=1)  # validUntil == now: expired
    expired = await client.features.check(company_id=company_id, feature_code="sso")
    assert (expired.is_enabled, expired.can_use) == (False, False)
    status = await client.billing.get_status(company_id)
    assert status.enabled_features_count == 0

    # An expired metered feature refuses usage.
    await client.features.set_access(
        company_id=company_id,
        feature_code="ai_credit",
        is_enabled=True,
        valid_until=clock.now + timedelta(seconds=1),
    )
    clock.advance(seconds=1)
    with pytest.raises(PermissionDeniedError):
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )

    # valid_until=None clears the expiry.
    cleared = await client.features.set_access(
        company_id=company_id, feature_code="sso", valid_until=None
    )
    assert (cleared.valid_until, cleared.is_enabled) == (None, True)


# -- usage ---------------------------------------------------------------------------------


async def test_usage_figures(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    await enable_ai_credit(client, company_id, quantity_limit=100, included_quantity=30)
    first = await client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=25
    )
    assert first.model_dump() == {
        "feature_code": "ai_credit",
        "current_usage": 25,
        "quantity_limit": 100,
        "included_quantity": 30,
        "remaining": 75,
        "billable_quantity": 0,
        "is_at_limit": False,
        "duplicate": False,
    }
    second = await client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=75
    )
    assert (second.current_usage, second.remaining, second.billable_quantity) == (100, 0, 70)
    assert second.is_at_limit is True
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert (access.current_usage, access.can_use, access.remaining) == (100, False, 0)


async def test_usage_over_the_limit_counts_nothing(
    client: AsyncChatarminOS, engine: LocalEngine
) -> None:
    company_id = await new_company(client)
    await enable_ai_credit(client, company_id, quantity_limit=10)
    await client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=8)
    with pytest.raises(PreconditionFailedError) as info:
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=3, idempotency_key="k-over"
        )
    error = info.value
    assert (error.status_code, error.code, error.path) == (
        412,
        "PRECONDITION_FAILED",
        "billing.trackUsage",
    )
    assert error.message
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert access.current_usage == 8
    assert [e["quantity"] for e in engine.usage_events(company_id)] == [8]
    # A refused call is not remembered: the same key works once there is room.
    exact = await client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=2, idempotency_key="k-over"
    )
    assert (exact.current_usage, exact.duplicate, exact.is_at_limit) == (10, False, True)


async def test_usage_on_a_feature_not_enabled_is_forbidden(
    client: AsyncChatarminOS, engine: LocalEngine
) -> None:
    company_id = await new_company(client)
    with pytest.raises(PermissionDeniedError) as info:
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    assert (info.value.status_code, info.value.code) == (403, "FORBIDDEN")
    await client.features.set_access(
        company_id=company_id, feature_code="ai_credit", is_enabled=False, quantity_limit=10
    )
    with pytest.raises(PermissionDeniedError):
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert access.current_usage == 0
    assert engine.usage_events() == []


async def test_same_idempotency_key_counts_once(
    client: AsyncChatarminOS, engine: LocalEngine
) -> None:
    company_id = await new_company(client)
    await enable_ai_credit(client, company_id, quantity_limit=100, included_quantity=5)
    first = await client.billing.track_usage(
        company_id=company_id,
        feature_code="ai_credit",
        quantity=10,
        idempotency_key="request_1",
        metadata={"model": "gpt-4"},
    )
    assert (first.current_usage, first.duplicate) == (10, False)
    await client.billing.track_usage(
        company_id=company_id, feature_code="ai_credit", quantity=20, idempotency_key="request_2"
    )
    again = await client.billing.track_usage(
        company_id=company_id,
        feature_code="ai_credit",
        quantity=10,
        idempotency_key="request_1",
        metadata={"model": "gpt-4"},
    )
    assert again.duplicate is True
    # The first call's figures, not the current ones.
    assert again.model_dump() == {**first.model_dump(), "duplicate": True}
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert access.current_usage == 30
    events = engine.usage_events(company_id, "ai_credit")
    assert [(e["quantity"], e["idempotencyKey"]) for e in events] == [
        (10, "request_1"),
        (20, "request_2"),
    ]
    assert events[0]["metadata"] == {"model": "gpt-4"}


async def test_track_usage_always_sends_an_idempotency_key(
    client: AsyncChatarminOS, engine: LocalEngine
) -> None:
    company_id = await new_company(client)
    await enable_ai_credit(client, company_id)
    await client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=1)
    await client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=1)
    keys = [e["idempotencyKey"] for e in engine.usage_events(company_id)]
    assert len(keys) == 2
    assert all(keys) and keys[0] != keys[1]


# -- tiers ---------------------------------------------------------------------------------


async def test_tiers_list_and_get(client: AsyncChatarminOS) -> None:
    assert [(t.code, t.name) for t in await client.tiers.list()] == [
        ("free", "Free"),
        ("pro", "Pro"),
        ("enterprise", "Enterprise"),
    ]
    pro = await client.tiers.get("pro")
    assert pro.base_fee is not None
    assert (pro.base_fee.stripe.price_id, pro.base_fee.stripe.unit_amount) == (
        "price_pro_base",
        4900,
    )
    assert (pro.base_fee.stripe.currency, pro.base_fee.stripe.interval) == ("eur", "month")
    free = await client.tiers.get("free")
    assert free.base_fee is None
    assert free.stripe_price_ids == []
    with pytest.raises(NotFoundError):
        await client.tiers.get("platinum")


async def test_apply_tier_with_overrides(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    await client.features.set_access(
        company_id=company_id, feature_code="team_seats", config={"theme": "dark"}
    )
    applied = await client.tiers.apply(
        "pro",
        company_id=company_id,
        features={
            "ai_credit": {"included_quantity": 100, "model": "gpt-4"},
            "team_seats": {"max_quantity": 10, "slackId": "C42"},
        },
    )
    assert (applied.company_id, applied.tier_code, applied.features_applied) == (
        company_id,
        "pro",
        5,
    )
    by_code = {f.feature_code: f for f in await client.features.list_access(company_id)}
    credit = by_code["ai_credit"]
    assert (credit.included_quantity, credit.quantity_limit) == (100, 10000)
    assert credit.config_values == {"model": "gpt-4"}
    assert credit.source == "subscription"
    seats = by_code["team_seats"]
    assert seats.quantity_limit == 10
    # The tier's config then the override, keys untouched.
    assert seats.config_values == {"maxSeats": 20, "slackId": "C42"}
    assert seats.source == "subscription"
    assert {code for code, f in by_code.items() if f.is_enabled} == {
        "ai_credit",
        "team_seats",
        "api_access",
        "advanced_analytics",
        "custom_branding",
    }

    # The TypeScript SDK's alias calls the same procedure.
    again = await client.subscriptions.create(
        "pro", company_id=company_id, features={"ai_credit": {"included_quantity": 500}}
    )
    assert again.features_applied == 5
    credit_after = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert credit_after.included_quantity == 500


async def test_apply_tier_keeps_usage_and_unknown_tier(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    await client.tiers.apply("free", company_id=company_id)
    await client.billing.track_usage(company_id=company_id, feature_code="ai_credit", quantity=60)
    await client.tiers.apply("enterprise", company_id=company_id)
    access = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert (access.current_usage, access.quantity_limit, access.remaining) == (60, None, None)
    with pytest.raises(NotFoundError):
        await client.tiers.apply("platinum", company_id=company_id)


# -- Stripe --------------------------------------------------------------------------------


async def test_claim_checkout(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    claimed = await client.billing.claim_checkout(
        company_id=company_id, checkout_session_id="cs_test_enterprise_completed"
    )
    assert claimed.already_claimed is False
    assert claimed.tier_code == "enterprise"
    assert claimed.features_applied == 7
    sso = await client.features.check(company_id=company_id, feature_code="sso")
    assert sso.is_enabled is True

    await client.tiers.apply("free", company_id=company_id)  # a manual downgrade
    again = await client.billing.claim_checkout(
        company_id=company_id, checkout_session_id="cs_test_enterprise_completed"
    )
    assert again.already_claimed is True
    assert again.subscription_id == claimed.subscription_id
    assert again.features_applied == 0
    credit = await client.features.check(company_id=company_id, feature_code="ai_credit")
    assert credit.quantity_limit == 100  # nothing applied again

    with pytest.raises(NotFoundError) as info:
        await client.billing.claim_checkout(company_id=company_id, checkout_session_id="cs_nope")
    assert (info.value.code, info.value.path) == ("NOT_FOUND", "billing.claimCheckout")
    with pytest.raises(PreconditionFailedError):
        await client.billing.claim_checkout(
            company_id=company_id, checkout_session_id="cs_test_open"
        )
    status = await client.billing.get_status(company_id)
    assert [s.stripe_subscription_id for s in status.active_subscriptions] == [
        "sub_test_enterprise"
    ]


async def test_link_subscription(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    linked = await client.billing.link_subscription(
        company_id=company_id,
        stripe_subscription_id="sub_test_existing_pro",
        stripe_customer_id="cus_test_existing",
        tier_code="pro",
        display_name="Pro Plan",
    )
    assert (linked.already_linked, linked.features_applied) == (False, 5)
    again = await client.billing.link_subscription(
        company_id=company_id, stripe_subscription_id="sub_test_existing_pro"
    )
    assert (again.already_linked, again.subscription_id) == (True, linked.subscription_id)
    status = await client.billing.get_status(company_id)
    [subscription] = status.active_subscriptions
    assert subscription.display_name == "Pro Plan"


# -- links ---------------------------------------------------------------------------------


async def test_links_create_and_reset(client: AsyncChatarminOS, engine: LocalEngine) -> None:
    acme = await new_company(client, "Acme Inc")
    globex = await new_company(client, "Globex")
    link = await client.links.create(
        company_id=acme, external_org_id="org_1", label="Store Vienna", external_user_id="user_x"
    )
    assert (link.company_id, link.external_org_id, link.label, link.external_user_id) == (
        acme,
        "org_1",
        "Store Vienna",
        "user_x",
    )
    assert link.created_at == T0
    await client.links.create(company_id=globex, external_org_id="org_2")
    await client.contacts.create(company_id=acme, email="a@acme.com")
    await client.contacts.create(company_id=globex, email="g@globex.com")

    async with AsyncChatarminOS.local(engine, api_key=OTHER_KEY) as other:
        await other.links.create(company_id=acme, external_org_id="org_1")

    result = await client.links.reset()
    assert (result.links_deleted, result.contacts_deleted, result.mrr_reset) == (2, 0, False)
    assert await client.companies.get_by_product_link(external_org_id="org_1") is None
    assert len(await client.contacts.list(acme)) == 1  # contacts kept

    # Another product's links are its own.
    async with AsyncChatarminOS.local(engine, api_key=OTHER_KEY) as other:
        kept = await other.companies.get_by_product_link(external_org_id="org_1")
        assert kept is not None and kept.id == acme

    await client.links.create(company_id=acme, external_org_id="org_1")
    await client.links.create(company_id=globex, external_org_id="org_2")
    full = await client.links.reset(delete_contacts=True, reset_mrr=True)
    assert (full.links_deleted, full.contacts_deleted, full.mrr_reset) == (2, 2, True)
    assert await client.contacts.list(acme) == []
    assert await client.contacts.list(globex) == []
    assert (await client.links.reset()).links_deleted == 0


# -- errors --------------------------------------------------------------------------------


async def test_wrong_api_key_is_authentication_error(engine: LocalEngine, transformer: Any) -> None:
    async with AsyncChatarminOS.local(engine, api_key="os_sk_wrong", transformer=transformer) as os:
        with pytest.raises(AuthenticationError) as info:
            await os.tiers.list()
    assert (info.value.status_code, info.value.code, info.value.path) == (
        401,
        "UNAUTHORIZED",
        "tiers.list",
    )
    assert "os_sk_wrong" not in str(info.value)


async def test_unknown_feature_and_company_are_not_found(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    with pytest.raises(NotFoundError) as info:
        await client.features.check(company_id=company_id, feature_code="no_such_feature")
    assert (info.value.status_code, info.value.code, info.value.path) == (
        404,
        "NOT_FOUND",
        "features.check",
    )
    assert "no_such_feature" in info.value.message
    with pytest.raises(NotFoundError):
        await client.billing.track_usage(
            company_id=company_id, feature_code="no_such_feature", quantity=1
        )
    with pytest.raises(NotFoundError):
        await client.features.check(company_id="no-such-company", feature_code="ai_credit")
    with pytest.raises(NotFoundError):
        await client.features.check_by_external_org_id("org_unlinked", "ai_credit")


async def test_server_side_validation_is_bad_request(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client)
    with pytest.raises(BadRequestError) as info:
        await client._call(
            "billing.trackUsage",
            {"companyId": company_id, "featureCode": "ai_credit", "quantity": 0, "bogus": 1},
            dict,
        )
    error = info.value
    assert (error.status_code, error.code, error.path) == (400, "BAD_REQUEST", "billing.trackUsage")
    # The validator's text: it names the offending fields.
    assert "quantity" in error.message
    assert ">= 1" in error.message
    assert "bogus" in error.message
    assert isinstance(error, APIStatusError)


async def test_conflicting_link_is_conflict(client: AsyncChatarminOS) -> None:
    company_id = await new_company(client, external_org_id="org_1")
    with pytest.raises(ConflictError) as info:
        await client.links.create(company_id=company_id, external_org_id="org_1")
    assert (info.value.status_code, info.value.code) == (409, "CONFLICT")
