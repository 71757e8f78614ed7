"""The SDK against the local ChatarminOS in this process: round trips and error mapping.

Every public method goes through the real client (codec, error mapping, models) and the
local server's real tRPC handling, in both transformers. The server's rules themselves
(smart linking, limits, idempotency, tiers, Stripe, ...) are tested once, at the engine, in
``tests/local_server/test_engine.py``; here only that each call arrives and comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from chatarmin_os import (
    APIStatusError,
    ApplyTierResult,
    AsyncChatarminOS,
    AuthenticationError,
    BadRequestError,
    BillingStatus,
    BulkUpsertResult,
    ClaimCheckoutResult,
    Company,
    ConflictError,
    Contact,
    FeatureAccess,
    FeatureAccessDetail,
    LinkSubscriptionResult,
    NotFoundError,
    OnboardResult,
    OrgFeatureAccess,
    PermissionDeniedError,
    PreconditionFailedError,
    ProductLink,
    ResetLinksResult,
    SmartLinkResult,
    Tier,
    TierSummary,
    UpsertedContact,
    UsageResult,
)
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from tests.support.cases import PATHS
from tests.support.helpers import T0, TRANSFORMERS, Clock

OTHER_KEY = "os_sk_other_product"


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine(api_keys=(DEFAULT_API_KEY, OTHER_KEY), clock=Clock())
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


async def test_every_method_round_trips(client: AsyncChatarminOS, engine: LocalEngine) -> None:
    called: set[str] = set()

    def seen(name: str, result: Any, kind: type) -> Any:
        called.add(name)
        items = result if isinstance(result, list) else [result]
        assert items and all(type(item) is kind for item in items), (name, result)
        return result

    onboarded = seen(
        "onboard",
        await client.onboard(
            external_org_id="org_1",
            label="My Product",
            hints={"company_name": "Acme Inc", "domain": "acme.com"},
            tier_code="pro",
            contact_email="jane@acme.com",
            created_at=datetime(2020, 5, 1, 13, tzinfo=timezone(timedelta(hours=1))),
        ),
        OnboardResult,
    )
    company_id = onboarded.company_id
    assert onboarded.link_status == "created"

    company = seen(
        "companies.get_by_product_link",
        await client.companies.get_by_product_link(external_org_id="org_1"),
        Company,
    )
    # Timestamps come back as aware UTC datetimes, whichever offset they were sent with.
    assert company.created_at == datetime(2020, 5, 1, 12, tzinfo=timezone.utc)
    other = seen("companies.create", await client.companies.create(name="Globex"), Company)
    assert other.created_at == T0
    seen(
        "companies.update",
        await client.companies.update(company_id=other.id, domain="globex.com"),
        Company,
    )
    linked = seen(
        "companies.smart_link",
        await client.companies.smart_link(
            external_org_id="org_2", label="P", hints={"domain": "globex.com"}
        ),
        SmartLinkResult,
    )
    assert (linked.status, linked.company_id) == ("linked", other.id)

    seen(
        "contacts.create",
        await client.contacts.create(
            company_id=company_id, email="bob@acme.com", metadata={"k": 1}
        ),
        UpsertedContact,
    )
    seen(
        "contacts.bulk_upsert",
        await client.contacts.bulk_upsert(
            company_id=company_id, contacts=[{"email": "eve@acme.com", "is_primary": True}]
        ),
        BulkUpsertResult,
    )
    contacts = seen("contacts.list", await client.contacts.list(company_id), Contact)
    assert [c.email for c in contacts] == ["eve@acme.com", "jane@acme.com", "bob@acme.com"]

    seen(
        "features.check",
        await client.features.check(company_id=company_id, feature_code="ai_credit"),
        FeatureAccess,
    )
    seen("features.list_access", await client.features.list_access(company_id), FeatureAccessDetail)
    detail = seen(
        "features.set_access",
        await client.features.set_access(
            external_org_id="org_1",
            feature_code="sso",
            is_enabled=True,
            quantity_limit=None,
            valid_until=datetime(2030, 1, 1, tzinfo=timezone.utc),
        ),
        FeatureAccessDetail,
    )
    assert detail.valid_until == datetime(2030, 1, 1, tzinfo=timezone.utc)
    seen(
        "features.get_access_by_external_org_id",
        await client.features.get_access_by_external_org_id("org_1"),
        OrgFeatureAccess,
    )
    seen(
        "features.check_by_external_org_id",
        await client.features.check_by_external_org_id("org_1", "sso"),
        FeatureAccess,
    )

    usage = seen(
        "billing.track_usage",
        await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=3
        ),
        UsageResult,
    )
    assert (usage.current_usage, usage.duplicate) == (3, False)
    seen(
        "billing.claim_checkout",
        await client.billing.claim_checkout(
            company_id=company_id, checkout_session_id="cs_test_pro_completed"
        ),
        ClaimCheckoutResult,
    )
    seen(
        "billing.link_subscription",
        await client.billing.link_subscription(company_id=other.id, stripe_subscription_id="sub_x"),
        LinkSubscriptionResult,
    )
    status = seen("billing.get_status", await client.billing.get_status(company_id), BillingStatus)
    assert status.active_subscriptions[0].current_period_end == datetime(
        2030, 1, 1, tzinfo=timezone.utc
    )

    seen("tiers.list", await client.tiers.list(), TierSummary)
    seen("tiers.get", await client.tiers.get("pro"), Tier)
    seen("tiers.apply", await client.tiers.apply("free", company_id=other.id), ApplyTierResult)
    seen(
        "subscriptions.create",
        await client.subscriptions.create(
            "pro", company_id=other.id, features={"ai_credit": {"included_quantity": 5}}
        ),
        ApplyTierResult,
    )

    seen(
        "links.create",
        await client.links.create(company_id=company_id, external_org_id="org_3"),
        ProductLink,
    )
    reset = seen("links.reset", await client.links.reset(delete_contacts=True), ResetLinksResult)
    assert (reset.links_deleted, reset.contacts_deleted) == (3, 3)

    assert called == set(PATHS)  # every public method


# -- error mapping: each code the local server answers, as the SDK's exception ---------------


async def test_error_codes_map_to_exception_classes(client: AsyncChatarminOS) -> None:
    company = await client.companies.create(name="Acme Inc", external_org_id="org_1")
    failures: list[tuple[Any, type[APIStatusError], str, int, str]] = [
        (
            lambda: client.features.check(company_id="nope", feature_code="ai_credit"),
            NotFoundError,
            "NOT_FOUND",
            404,
            'Company "nope" not found',
        ),
        (
            lambda: client.tiers.apply("pro", company_id=company.id, features={"nope": {}}),
            BadRequestError,
            "BAD_REQUEST",
            400,
            'features.nope: feature "nope" is not part of tier "pro"',
        ),
        (
            lambda: client.billing.track_usage(
                company_id=company.id, feature_code="ai_credit", quantity=1
            ),
            PermissionDeniedError,
            "FORBIDDEN",
            403,
            'Feature "ai_credit" is not enabled for this company',
        ),
        (
            lambda: client.links.create(company_id=company.id, external_org_id="org_1"),
            ConflictError,
            "CONFLICT",
            409,
            'externalOrgId "org_1" is already linked to a company',
        ),
    ]
    for call, cls, code, status, message in failures:
        with pytest.raises(cls) as info:
            await call()
        error = info.value
        assert (error.code, error.status_code, error.message) == (code, status, message)
        assert error.path is not None and error.path in PATHS.values()


async def test_limits_and_idempotency_conflicts_are_typed(client: AsyncChatarminOS) -> None:
    company = await client.companies.create(name="Acme Inc")
    await client.features.set_access(
        company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=5
    )
    with pytest.raises(PreconditionFailedError) as limit:
        await client.billing.track_usage(
            company_id=company.id, feature_code="ai_credit", quantity=6
        )
    assert (limit.value.code, limit.value.status_code) == ("PRECONDITION_FAILED", 412)
    await client.billing.track_usage(
        company_id=company.id, feature_code="ai_credit", quantity=1, idempotency_key="req_1"
    )
    with pytest.raises(ConflictError) as conflict:
        await client.billing.track_usage(
            company_id=company.id, feature_code="ai_credit", quantity=2, idempotency_key="req_1"
        )
    assert '"req_1"' in conflict.value.message
    again = await client.billing.track_usage(
        company_id=company.id, feature_code="ai_credit", quantity=1, idempotency_key="req_1"
    )
    assert (again.duplicate, again.current_usage) == (True, 1)


async def test_a_wrong_key_is_an_authentication_error(
    engine: LocalEngine, transformer: Any
) -> None:
    async with AsyncChatarminOS.local(
        engine, api_key="os_sk_wrong", transformer=transformer, max_retries=0
    ) as os:
        with pytest.raises(AuthenticationError) as info:
            await os.tiers.list()
    assert (info.value.code, info.value.status_code, info.value.message) == (
        "UNAUTHORIZED",
        401,
        "Invalid API key",
    )
