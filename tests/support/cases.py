"""Every public method of the SDK, case by case: one table for the wire and conformance tests.

Each :class:`Case` is a call, the procedure it reaches, its input as the server must
receive it (timestamps marked :class:`Date`), the server's answer, and the result the SDK
must make of it. ``tests/_async/test_resources.py`` serves the answers with respx and checks
the exact requests in both transformers; ``tests/_async/test_conformance.py`` has the real
``@trpc/server`` (``tests/conformance/server.mjs``) parse the same requests and answer the
same outputs. :data:`METHODS` lists each method's required arguments and the optional ones
whose ``None`` means "not given", for the tests of what is (not) sent.

A case without ``output``/``expected`` answers as the first case of its procedure does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from chatarmin_os import (
    ApplyTierResult,
    BaseFee,
    BillingStatus,
    BulkUpsertResult,
    ClaimCheckoutResult,
    Company,
    Contact,
    ContactInput,
    FeatureAccess,
    FeatureAccessDetail,
    Hints,
    LinkSubscriptionResult,
    OnboardBillingStatus,
    OnboardResult,
    OrgFeatureAccess,
    ProductLink,
    ResetLinksResult,
    SmartLinkResult,
    StripePrice,
    Subscription,
    SubscriptionTier,
    Suggestion,
    Tier,
    TierFeature,
    TierSummary,
    UpsertedContact,
    UsageResult,
)
from chatarmin_os._procedures import PROCEDURES
from chatarmin_os._wire import format_datetime

NO_INPUT = "<no input>"
"""The input of a procedure called without input."""

ISO = "2024-01-15T10:30:00.000Z"
ISO_OFFSET = "2024-01-15T11:30:00+01:00"  # the same instant


@dataclass(frozen=True)
class Date:
    """A timestamp in an input: the ISO string on the wire, annotated ``["Date"]`` by superjson."""

    iso: str


def plain(value: Any) -> Any:
    """A value as plain JSON: :class:`Date` and ``datetime`` become ISO-8601 UTC strings."""
    if isinstance(value, Date):
        return value.iso
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def date_paths(value: Any, path: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """superjson's ``meta.values`` for the :class:`Date` markers (dots in keys escaped)."""
    if isinstance(value, Date):
        return {".".join(path): ["Date"]}
    found: dict[str, list[str]] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= date_paths(item, (*path, key.replace("\\", "\\\\").replace(".", "\\.")))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= date_paths(item, (*path, str(index)))
    return found


def on_the_wire(value: Any, transformer: str) -> Any:
    """An input exactly as it travels: plain JSON, or wrapped and annotated by superjson."""
    if transformer == "json":
        return plain(value)
    wrapped: dict[str, Any] = {"json": plain(value)}
    dates = date_paths(value)
    if dates:
        wrapped["meta"] = {"values": dates, "v": 1}
    return wrapped


def recorded(value: Any, transformer: str) -> Any:
    """An input as the reference router records it parsed (a Date as ``{"$date": iso}``)."""
    if isinstance(value, Date):
        return {"$date": value.iso} if transformer == "superjson" else value.iso
    if isinstance(value, dict):
        return {key: recorded(item, transformer) for key, item in value.items()}
    if isinstance(value, list):
        return [recorded(item, transformer) for item in value]
    return value


UTC = timezone.utc
CET = timezone(timedelta(hours=1))
EST = timezone(timedelta(hours=-5))
IST = timezone(timedelta(hours=5, minutes=30))

T_CREATED = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
T_UPDATED = datetime(2024, 3, 2, 8, 15, 30, 250000, tzinfo=UTC)
T_UNTIL = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
T_PERIOD_END = datetime(2024, 2, 15, tzinfo=UTC)

EXTRA = {"serverRegion": "eu-central-1"}
"""A field the contract does not know, added by the server to every top-level output."""

# --- canned outputs -------------------------------------------------------------------

COMPANY_OUT = {
    "id": "comp_7f3a",
    "shortId": "ACME01",
    "name": "Acme Inc",
    "domain": "acme.com",
    "createdAt": T_CREATED,
    **EXTRA,
}
COMPANY = Company(
    id="comp_7f3a",
    short_id="ACME01",
    name="Acme Inc",
    domain="acme.com",
    created_at=T_CREATED,
    serverRegion="eu-central-1",
)

JANE_OUT = {
    "id": "ct_jane",
    "companyId": "comp_7f3a",
    "email": "jane@acme.com",
    "name": "Jane Doe",
    "role": "CTO",
    "isPrimary": True,
    "avatarUrl": "https://cdn.acme.com/jane.png",
    "metadata": {"slackId": "U024BE7LH", "hubspot_id": 4711, "prefs": {"opt_in": True}},
    "createdAt": T_CREATED,
    "updatedAt": T_UPDATED,
}
JOE_OUT = {
    "id": "ct_joe",
    "companyId": "comp_7f3a",
    "email": "joe@acme.com",
    "name": None,
    "role": None,
    "isPrimary": False,
    "avatarUrl": None,
    "metadata": {},
    "createdAt": T_UPDATED,
    "updatedAt": T_UPDATED,
}


def jane(cls: type[Contact] = Contact, **more: Any) -> Contact:
    return cls(
        id="ct_jane",
        company_id="comp_7f3a",
        email="jane@acme.com",
        name="Jane Doe",
        role="CTO",
        is_primary=True,
        avatar_url="https://cdn.acme.com/jane.png",
        metadata={"slackId": "U024BE7LH", "hubspot_id": 4711, "prefs": {"opt_in": True}},
        created_at=T_CREATED,
        updated_at=T_UPDATED,
        **more,
    )


def joe(cls: type[Contact] = Contact, **more: Any) -> Contact:
    return cls(
        id="ct_joe",
        company_id="comp_7f3a",
        email="joe@acme.com",
        name=None,
        role=None,
        is_primary=False,
        avatar_url=None,
        metadata={},
        created_at=T_UPDATED,
        updated_at=T_UPDATED,
        **more,
    )


AI_ACCESS_OUT = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 125,
    "quantityLimit": 1000,
    "includedQuantity": 100,
    "remaining": 875,
}
AI_DETAIL_OUT = {
    **AI_ACCESS_OUT,
    "featureName": "AI Credits",
    "configValues": {"model": "gpt-4", "max_tokens": 1500, "slackId": "C0123"},
    "source": "trial",
    "validUntil": T_UNTIL,
}
SSO_DETAIL_OUT = {
    "featureCode": "sso",
    "isEnabled": False,
    "canUse": False,
    "hasQuantity": False,
    "currentUsage": 0,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
    "featureName": "Single sign-on",
    "configValues": {},
    "source": "manual",
    "validUntil": None,
}


def ai_detail(**more: Any) -> FeatureAccessDetail:
    return FeatureAccessDetail(
        feature_code="ai_credit",
        is_enabled=True,
        can_use=True,
        has_quantity=True,
        current_usage=125,
        quantity_limit=1000,
        included_quantity=100,
        remaining=875,
        feature_name="AI Credits",
        config_values={"model": "gpt-4", "max_tokens": 1500, "slackId": "C0123"},
        source="trial",
        valid_until=T_UNTIL,
        **more,
    )


def sso_detail(**more: Any) -> FeatureAccessDetail:
    return FeatureAccessDetail(
        feature_code="sso",
        is_enabled=False,
        can_use=False,
        has_quantity=False,
        current_usage=0,
        quantity_limit=None,
        included_quantity=None,
        remaining=None,
        feature_name="Single sign-on",
        config_values={},
        source="manual",
        valid_until=None,
        **more,
    )


# --- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call of a public method, the request it makes, and what it makes of the answer."""

    id: str
    """``<method>`` or ``<method>-<what is special>``."""
    call: Callable[[Any], Any]
    """Makes the call on a client (returns an awaitable with the async client)."""
    path: str
    """The procedure it reaches."""
    input: Any
    """What the server must receive (:class:`Date` for timestamps, ``NO_INPUT`` for none)."""
    output: Any = None
    """The server's answer (datetimes as ``datetime``)."""
    expected: Any = None
    """The result the SDK returns for that answer."""

    @property
    def kind(self) -> str:
        """``query`` or ``mutation``."""
        return PROCEDURES[self.path]

    @property
    def method(self) -> str:
        """``GET`` or ``POST``."""
        return "GET" if self.kind == "query" else "POST"


CASES: list[Case] = [
    Case(
        id="onboard",
        call=lambda c: c.onboard(
            external_org_id="org_abc123",
            label="My Product",
            hints={"company_name": "Acme Inc", "domain": "acme.com", "emails": ["jane@acme.com"]},
            tier_code="pro",
            checkout_session_id="cs_test_a1B2c3",
            stripe_subscription_id="sub_1OaBcD",
            stripe_customer_id="cus_PqRsT",
            contact_email="jane@acme.com",
            contact_name="Jane Doe",
            created_at=datetime(2024, 1, 15, 11, 30, tzinfo=CET),
        ),
        path="onboard",
        input={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"companyName": "Acme Inc", "domain": "acme.com", "emails": ["jane@acme.com"]},
            "tierCode": "pro",
            "checkoutSessionId": "cs_test_a1B2c3",
            "stripeSubscriptionId": "sub_1OaBcD",
            "stripeCustomerId": "cus_PqRsT",
            "contactEmail": "jane@acme.com",
            "contactName": "Jane Doe",
            "createdAt": Date("2024-01-15T10:30:00.000Z"),
        },
        output={
            "companyId": "comp_7f3a",
            "companyName": "Acme Inc",
            "linkStatus": "created",
            "billingStatus": {
                "claimed": True,
                "linked": True,
                "tierApplied": True,
                "subscriptionId": "subdb_91",
            },
            **EXTRA,
        },
        expected=OnboardResult(
            company_id="comp_7f3a",
            company_name="Acme Inc",
            link_status="created",
            billing_status=OnboardBillingStatus(
                claimed=True, linked=True, tier_applied=True, subscription_id="subdb_91"
            ),
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="onboard-minimal",
        call=lambda c: c.onboard(external_org_id="org_xyz", label="My Product"),
        path="onboard",
        input={"externalOrgId": "org_xyz", "label": "My Product"},
        output={
            "companyId": "comp_7f3a",
            "companyName": "Acme Inc",
            "linkStatus": "already_linked",
            "billingStatus": None,
            **EXTRA,
        },
        expected=OnboardResult(
            company_id="comp_7f3a",
            company_name="Acme Inc",
            link_status="already_linked",
            billing_status=None,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="companies.get_by_product_link",
        call=lambda c: c.companies.get_by_product_link(external_org_id="org_abc123"),
        path="companies.getByProductLink",
        input={"externalOrgId": "org_abc123"},
        output={**COMPANY_OUT, "domain": None},
        expected=Company(
            id="comp_7f3a",
            short_id="ACME01",
            name="Acme Inc",
            domain=None,
            created_at=T_CREATED,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="companies.create",
        call=lambda c: c.companies.create(
            name="Acme Inc",
            domain="acme.com",
            external_org_id="org_abc123",
            label="My Product",
            contact_email="jane@acme.com",
            contact_name="Jane Doe",
            created_at="2024-01-15T05:30:00-05:00",
        ),
        path="companies.create",
        input={
            "name": "Acme Inc",
            "domain": "acme.com",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "contactEmail": "jane@acme.com",
            "contactName": "Jane Doe",
            "createdAt": Date("2024-01-15T10:30:00.000Z"),
        },
        output=COMPANY_OUT,
        expected=COMPANY,
    ),
    Case(
        id="companies.update",
        call=lambda c: c.companies.update(
            company_id="comp_7f3a",
            name="Acme GmbH",
            domain="acme.de",
            created_at=datetime(2023, 6, 1, 12, 0, 0, 123456, tzinfo=UTC),
        ),
        path="companies.update",
        input={
            "companyId": "comp_7f3a",
            "name": "Acme GmbH",
            "domain": "acme.de",
            "createdAt": Date("2023-06-01T12:00:00.123Z"),
        },
        output={
            **COMPANY_OUT,
            "name": "Acme GmbH",
            "domain": "acme.de",
            "createdAt": datetime(2023, 6, 1, 12, 0, 0, 123000, tzinfo=UTC),
        },
        expected=Company(
            id="comp_7f3a",
            short_id="ACME01",
            name="Acme GmbH",
            domain="acme.de",
            created_at=datetime(2023, 6, 1, 12, 0, 0, 123000, tzinfo=UTC),
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="companies.smart_link",
        call=lambda c: c.companies.smart_link(
            external_org_id="org_abc123",
            label="My Product",
            hints=Hints(company_name="Acme", emails=["jane@acme.com", "joe@acme.com"]),
            min_confidence=0.9,
        ),
        path="companies.smartLink",
        input={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"companyName": "Acme", "emails": ["jane@acme.com", "joe@acme.com"]},
            "minConfidence": 0.9,
        },
        output={
            "status": "suggestions",
            "companyId": None,
            "customerName": None,
            "confidence": None,
            "suggestions": [
                {
                    "companyId": "comp_7f3a",
                    "name": "Acme Inc",
                    "domain": None,
                    "confidence": 80,
                    "matchedBy": "name",
                    "similarity": 1.0,
                },
                {
                    "companyId": "comp_2b",
                    "name": "Acme Holdings",
                    "domain": "acme.com",
                    "confidence": 70.5,
                    "matchedBy": "email_domain",
                },
            ],
            **EXTRA,
        },
        expected=SmartLinkResult(
            status="suggestions",
            company_id=None,
            customer_name=None,
            confidence=None,
            suggestions=[
                Suggestion(
                    company_id="comp_7f3a",
                    name="Acme Inc",
                    domain=None,
                    confidence=80.0,
                    matched_by="name",
                    similarity=1.0,
                ),
                Suggestion(
                    company_id="comp_2b",
                    name="Acme Holdings",
                    domain="acme.com",
                    confidence=70.5,
                    matched_by="email_domain",
                ),
            ],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="companies.smart_link-linked",
        call=lambda c: c.companies.smart_link(
            external_org_id="org_abc123", label="My Product", hints={"domain": "acme.com"}
        ),
        path="companies.smartLink",
        input={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"domain": "acme.com"},
        },
        output={
            "status": "linked",
            "companyId": "comp_7f3a",
            "customerName": "Acme Inc",
            "confidence": 95,
            "suggestions": [],
            **EXTRA,
        },
        expected=SmartLinkResult(
            status="linked",
            company_id="comp_7f3a",
            customer_name="Acme Inc",
            confidence=95.0,
            suggestions=[],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="contacts.create",
        call=lambda c: c.contacts.create(
            company_id="comp_7f3a",
            email="jane@acme.com",
            name="Jane Doe",
            role="CTO",
            is_primary=True,
            avatar_url="https://cdn.acme.com/jane.png",
            metadata={"slackId": "U024BE7LH", "hubspot_id": 4711, "prefs": {"opt_in": True}},
        ),
        path="contacts.create",
        input={
            "companyId": "comp_7f3a",
            "email": "jane@acme.com",
            "name": "Jane Doe",
            "role": "CTO",
            "isPrimary": True,
            "avatarUrl": "https://cdn.acme.com/jane.png",
            "metadata": {"slackId": "U024BE7LH", "hubspot_id": 4711, "prefs": {"opt_in": True}},
        },
        output={**JANE_OUT, "isNew": True, **EXTRA},
        expected=jane(UpsertedContact, is_new=True, serverRegion="eu-central-1"),
    ),
    Case(
        id="contacts.bulk_upsert",
        call=lambda c: c.contacts.bulk_upsert(
            company_id="comp_7f3a",
            contacts=[
                {
                    "email": "jane@acme.com",
                    "name": "Jane Doe",
                    "is_primary": True,
                    "metadata": {"slackId": "U024BE7LH"},
                },
                ContactInput(email="joe@acme.com", role="Engineer", avatar_url="https://a.io/j"),
            ],
        ),
        path="contacts.bulkUpsert",
        input={
            "companyId": "comp_7f3a",
            "contacts": [
                {
                    "email": "jane@acme.com",
                    "name": "Jane Doe",
                    "isPrimary": True,
                    "metadata": {"slackId": "U024BE7LH"},
                },
                {"email": "joe@acme.com", "role": "Engineer", "avatarUrl": "https://a.io/j"},
            ],
        },
        output={
            "created": 1,
            "updated": 1,
            "contacts": [{**JANE_OUT, "isNew": False}, {**JOE_OUT, "isNew": True}],
            **EXTRA,
        },
        expected=BulkUpsertResult(
            created=1,
            updated=1,
            contacts=[jane(UpsertedContact, is_new=False), joe(UpsertedContact, is_new=True)],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="contacts.list",
        call=lambda c: c.contacts.list("comp_7f3a"),
        path="contacts.list",
        input={"companyId": "comp_7f3a"},
        output=[{**JANE_OUT, **EXTRA}, JOE_OUT],
        expected=[jane(serverRegion="eu-central-1"), joe()],
    ),
    Case(
        id="contacts.list-primary_only",
        call=lambda c: c.contacts.list("comp_7f3a", primary_only=True),
        path="contacts.list",
        input={"companyId": "comp_7f3a", "primaryOnly": True},
        output=[{**JANE_OUT, **EXTRA}],
        expected=[jane(serverRegion="eu-central-1")],
    ),
    Case(
        id="features.check",
        call=lambda c: c.features.check(company_id="comp_7f3a", feature_code="ai_credit"),
        path="features.check",
        input={"companyId": "comp_7f3a", "featureCode": "ai_credit"},
        output={**AI_ACCESS_OUT, **EXTRA},
        expected=FeatureAccess(
            feature_code="ai_credit",
            is_enabled=True,
            can_use=True,
            has_quantity=True,
            current_usage=125,
            quantity_limit=1000,
            included_quantity=100,
            remaining=875,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="features.list_access",
        call=lambda c: c.features.list_access("comp_7f3a"),
        path="features.listAccess",
        input={"companyId": "comp_7f3a"},
        output=[{**AI_DETAIL_OUT, **EXTRA}, SSO_DETAIL_OUT],
        expected=[ai_detail(serverRegion="eu-central-1"), sso_detail()],
    ),
    Case(
        id="features.set_access",
        call=lambda c: c.features.set_access(
            company_id="comp_7f3a",
            feature_code="ai_credit",
            is_enabled=True,
            quantity_limit=1000,
            included_quantity=100,
            config={"model": "gpt-4", "max_tokens": 1500, "slackId": "C0123"},
            source="trial",
            valid_until=datetime(2026, 1, 1, 0, 59, 59, tzinfo=CET),
        ),
        path="features.setAccess",
        input={
            "companyId": "comp_7f3a",
            "featureCode": "ai_credit",
            "isEnabled": True,
            "quantityLimit": 1000,
            "includedQuantity": 100,
            "config": {"model": "gpt-4", "max_tokens": 1500, "slackId": "C0123"},
            "source": "trial",
            "validUntil": Date("2025-12-31T23:59:59.000Z"),
        },
        output={**AI_DETAIL_OUT, **EXTRA},
        expected=ai_detail(serverRegion="eu-central-1"),
    ),
    Case(
        id="features.set_access-by_org-nulls",
        call=lambda c: c.features.set_access(
            external_org_id="org_abc123",
            feature_code="sso",
            is_enabled=False,
            quantity_limit=None,
            included_quantity=None,
            valid_until=None,
        ),
        path="features.setAccess",
        input={
            "externalOrgId": "org_abc123",
            "featureCode": "sso",
            "isEnabled": False,
            "quantityLimit": None,
            "includedQuantity": None,
            "validUntil": None,
        },
        output={**SSO_DETAIL_OUT, **EXTRA},
        expected=sso_detail(serverRegion="eu-central-1"),
    ),
    Case(
        id="features.get_access_by_external_org_id",
        call=lambda c: c.features.get_access_by_external_org_id("org_abc123"),
        path="features.getAccessByExternalOrgId",
        input={"externalOrgId": "org_abc123"},
        output={"companyId": "comp_7f3a", "features": [AI_DETAIL_OUT, SSO_DETAIL_OUT], **EXTRA},
        expected=OrgFeatureAccess(
            company_id="comp_7f3a",
            features=[ai_detail(), sso_detail()],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="features.check_by_external_org_id",
        call=lambda c: c.features.check_by_external_org_id("org_abc123", "seats"),
        path="features.checkByExternalOrgId",
        input={"externalOrgId": "org_abc123", "featureCode": "seats"},
        output={
            "featureCode": "seats",
            "isEnabled": True,
            "canUse": False,
            "hasQuantity": True,
            "currentUsage": 10,
            "quantityLimit": 10,
            "includedQuantity": None,
            "remaining": 0,
            **EXTRA,
        },
        expected=FeatureAccess(
            feature_code="seats",
            is_enabled=True,
            can_use=False,
            has_quantity=True,
            current_usage=10,
            quantity_limit=10,
            included_quantity=None,
            remaining=0,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="billing.track_usage",
        call=lambda c: c.billing.track_usage(
            company_id="comp_7f3a",
            feature_code="ai_credit",
            quantity=25,
            idempotency_key="request_42",
            metadata={"model": "gpt-4", "max_tokens": 1500},
        ),
        path="billing.trackUsage",
        input={
            "companyId": "comp_7f3a",
            "featureCode": "ai_credit",
            "quantity": 25,
            "idempotencyKey": "request_42",
            "metadata": {"model": "gpt-4", "max_tokens": 1500},
        },
        output={
            "featureCode": "ai_credit",
            "currentUsage": 125,
            "quantityLimit": 1000,
            "includedQuantity": 100,
            "remaining": 875,
            "billableQuantity": 25,
            "isAtLimit": False,
            "duplicate": True,
            **EXTRA,
        },
        expected=UsageResult(
            feature_code="ai_credit",
            current_usage=125,
            quantity_limit=1000,
            included_quantity=100,
            remaining=875,
            billable_quantity=25,
            is_at_limit=False,
            duplicate=True,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="billing.claim_checkout",
        call=lambda c: c.billing.claim_checkout(
            company_id="comp_7f3a", checkout_session_id="cs_test_a1B2c3"
        ),
        path="billing.claimCheckout",
        input={"companyId": "comp_7f3a", "checkoutSessionId": "cs_test_a1B2c3"},
        output={
            "subscriptionId": "subdb_91",
            "alreadyClaimed": False,
            "tierCode": "pro",
            "featuresApplied": 3,
            **EXTRA,
        },
        expected=ClaimCheckoutResult(
            subscription_id="subdb_91",
            already_claimed=False,
            tier_code="pro",
            features_applied=3,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="billing.link_subscription",
        call=lambda c: c.billing.link_subscription(
            company_id="comp_7f3a",
            stripe_subscription_id="sub_1OaBcD",
            stripe_customer_id="cus_PqRsT",
            tier_code="pro",
            display_name="Pro (yearly)",
        ),
        path="billing.linkSubscription",
        input={
            "companyId": "comp_7f3a",
            "stripeSubscriptionId": "sub_1OaBcD",
            "stripeCustomerId": "cus_PqRsT",
            "tierCode": "pro",
            "displayName": "Pro (yearly)",
        },
        output={
            "subscriptionId": "subdb_92",
            "alreadyLinked": True,
            "featuresApplied": 0,
            **EXTRA,
        },
        expected=LinkSubscriptionResult(
            subscription_id="subdb_92",
            already_linked=True,
            features_applied=0,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="billing.get_status",
        call=lambda c: c.billing.get_status("comp_7f3a"),
        path="billing.getStatus",
        input={"companyId": "comp_7f3a"},
        output={
            "companyId": "comp_7f3a",
            "hasBillingProfile": True,
            "activeSubscriptions": [
                {
                    "id": "subdb_91",
                    "stripeSubscriptionId": "sub_1OaBcD",
                    "status": "active",
                    "displayName": "Pro",
                    "tier": {"code": "pro", "name": "Pro"},
                    "currentPeriodEnd": T_PERIOD_END,
                },
                {
                    "id": "subdb_93",
                    "stripeSubscriptionId": None,
                    "status": "trialing",
                    "displayName": None,
                    "tier": None,
                    "currentPeriodEnd": None,
                },
            ],
            "enabledFeaturesCount": 4,
            **EXTRA,
        },
        expected=BillingStatus(
            company_id="comp_7f3a",
            has_billing_profile=True,
            active_subscriptions=[
                Subscription(
                    id="subdb_91",
                    stripe_subscription_id="sub_1OaBcD",
                    status="active",
                    display_name="Pro",
                    tier=SubscriptionTier(code="pro", name="Pro"),
                    current_period_end=T_PERIOD_END,
                ),
                Subscription(
                    id="subdb_93",
                    stripe_subscription_id=None,
                    status="trialing",
                    display_name=None,
                    tier=None,
                    current_period_end=None,
                ),
            ],
            enabled_features_count=4,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="tiers.list",
        call=lambda c: c.tiers.list(),
        path="tiers.list",
        input=NO_INPUT,
        output=[
            {"code": "free", "name": "Free", "description": None, **EXTRA},
            {"code": "pro", "name": "Pro", "description": "For growing teams"},
        ],
        expected=[
            TierSummary(code="free", name="Free", description=None, serverRegion="eu-central-1"),
            TierSummary(code="pro", name="Pro", description="For growing teams"),
        ],
    ),
    Case(
        id="tiers.get",
        call=lambda c: c.tiers.get("pro"),
        path="tiers.get",
        input={"tierCode": "pro"},
        output={
            "code": "pro",
            "name": "Pro",
            "description": "For growing teams",
            "baseFee": {
                "stripe": {
                    "priceId": "price_base_pro",
                    "unitAmount": 4900,
                    "currency": "eur",
                    "interval": "month",
                }
            },
            "features": [
                {
                    "code": "ai_credit",
                    "name": "AI Credits",
                    "configValues": {"included_quantity": 500, "model": "gpt-4"},
                },
                {"code": "sso", "name": "Single sign-on", "configValues": {}},
            ],
            "stripePriceIds": ["price_base_pro", "price_ai_credit_metered"],
            **EXTRA,
        },
        expected=Tier(
            code="pro",
            name="Pro",
            description="For growing teams",
            base_fee=BaseFee(
                stripe=StripePrice(
                    price_id="price_base_pro", unit_amount=4900, currency="eur", interval="month"
                )
            ),
            features=[
                TierFeature(
                    code="ai_credit",
                    name="AI Credits",
                    config_values={"included_quantity": 500, "model": "gpt-4"},
                ),
                TierFeature(code="sso", name="Single sign-on", config_values={}),
            ],
            stripe_price_ids=["price_base_pro", "price_ai_credit_metered"],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="tiers.get-no_base_fee",
        call=lambda c: c.tiers.get("free"),
        path="tiers.get",
        input={"tierCode": "free"},
        output={
            "code": "free",
            "name": "Free",
            "description": None,
            "baseFee": None,
            "features": [],
            "stripePriceIds": [],
            **EXTRA,
        },
        expected=Tier(
            code="free",
            name="Free",
            description=None,
            base_fee=None,
            features=[],
            stripe_price_ids=[],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="tiers.apply",
        call=lambda c: c.tiers.apply(
            "pro",
            company_id="comp_7f3a",
            features={"ai_credit": {"included_quantity": 500, "max_quantity": 2000, "model": "o1"}},
        ),
        path="tiers.applyTier",
        input={
            "tierCode": "pro",
            "companyId": "comp_7f3a",
            "features": {
                "ai_credit": {"included_quantity": 500, "max_quantity": 2000, "model": "o1"}
            },
        },
        output={"companyId": "comp_7f3a", "tierCode": "pro", "featuresApplied": 2, **EXTRA},
        expected=ApplyTierResult(
            company_id="comp_7f3a",
            tier_code="pro",
            features_applied=2,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="subscriptions.create",
        call=lambda c: c.subscriptions.create(
            "enterprise",
            company_id="comp_7f3a",
            features={"seats": {"max_quantity": 50, "slackId": "C1", "limits": {"per_day": 10}}},
        ),
        path="tiers.applyTier",
        input={
            "tierCode": "enterprise",
            "companyId": "comp_7f3a",
            "features": {"seats": {"max_quantity": 50, "slackId": "C1", "limits": {"per_day": 10}}},
        },
        output={
            "companyId": "comp_7f3a",
            "tierCode": "enterprise",
            "featuresApplied": 5,
            **EXTRA,
        },
        expected=ApplyTierResult(
            company_id="comp_7f3a",
            tier_code="enterprise",
            features_applied=5,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="links.create",
        call=lambda c: c.links.create(
            company_id="comp_7f3a",
            external_org_id="org_abc123",
            label="My Product",
            external_user_id="user_42",
        ),
        path="links.create",
        input={
            "companyId": "comp_7f3a",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "externalUserId": "user_42",
        },
        output={
            "id": "lnk_1",
            "companyId": "comp_7f3a",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "externalUserId": "user_42",
            "createdAt": T_CREATED,
            **EXTRA,
        },
        expected=ProductLink(
            id="lnk_1",
            company_id="comp_7f3a",
            external_org_id="org_abc123",
            label="My Product",
            external_user_id="user_42",
            created_at=T_CREATED,
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="links.reset",
        call=lambda c: c.links.reset(delete_contacts=True, reset_mrr=True),
        path="links.reset",
        input={"deleteContacts": True, "resetMrr": True},
        output={"linksDeleted": 3, "contactsDeleted": 7, "mrrReset": True, **EXTRA},
        expected=ResetLinksResult(
            links_deleted=3, contacts_deleted=7, mrr_reset=True, serverRegion="eu-central-1"
        ),
    ),
    Case(
        id="links.reset-no_flags",
        call=lambda c: c.links.reset(),
        path="links.reset",
        input={},
        output={"linksDeleted": 0, "contactsDeleted": 0, "mrrReset": False, **EXTRA},
        expected=ResetLinksResult(
            links_deleted=0, contacts_deleted=0, mrr_reset=False, serverRegion="eu-central-1"
        ),
    ),
    # -- edge cases of the encoding (the answers are the ones above) --
    Case(
        id="onboard-every-argument",
        call=lambda c: c.onboard(
            external_org_id="org_123",
            label="Production",
            hints={
                "company_name": "Acme Inc",
                "domain": "acme.example",
                "emails": ["jane@acme.example", "jane@acme.example"],
            },
            tier_code="pro",
            checkout_session_id="cs_test_123",
            stripe_subscription_id="sub_1OaBcDeFgHiJkL",
            stripe_customer_id="cus_123",
            contact_email="jane@acme.example",
            contact_name="Jane Doe",
            created_at=ISO,
        ),
        path="onboard",
        input={
            "externalOrgId": "org_123",
            "label": "Production",
            "hints": {
                "companyName": "Acme Inc",
                "domain": "acme.example",
                "emails": ["jane@acme.example", "jane@acme.example"],
            },
            "tierCode": "pro",
            "checkoutSessionId": "cs_test_123",
            "stripeSubscriptionId": "sub_1OaBcDeFgHiJkL",
            "stripeCustomerId": "cus_123",
            "contactEmail": "jane@acme.example",
            "contactName": "Jane Doe",
            "createdAt": Date(ISO),
        },
    ),
    Case(
        id="companies.get_by_product_link-linked",
        call=lambda c: c.companies.get_by_product_link(external_org_id="org_123"),
        path="companies.getByProductLink",
        input={"externalOrgId": "org_123"},
    ),
    Case(
        id="companies.create-minimal",
        call=lambda c: c.companies.create(name="Globex GmbH"),
        path="companies.create",
        input={"name": "Globex GmbH"},
    ),
    Case(
        id="companies.create-every-argument-offset-string",
        call=lambda c: c.companies.create(
            name="Globex GmbH",
            domain="globex.example",
            external_org_id="org_124",
            label="Production",
            contact_email="jane@acme.example",
            contact_name="Hank Scorpio",
            created_at=ISO_OFFSET,
        ),
        path="companies.create",
        input={
            "name": "Globex GmbH",
            "domain": "globex.example",
            "externalOrgId": "org_124",
            "label": "Production",
            "contactEmail": "jane@acme.example",
            "contactName": "Hank Scorpio",
            "createdAt": Date(ISO),
        },
    ),
    Case(
        id="companies.create-non-ascii",
        call=lambda c: c.companies.create(name="Müller & Söhne GmbH ✓ 🚀", label="a+b c/d?e"),
        path="companies.create",
        input={"name": "Müller & Söhne GmbH ✓ 🚀", "label": "a+b c/d?e"},
    ),
    Case(
        id="companies.update-minimal",
        call=lambda c: c.companies.update(company_id="comp_123"),
        path="companies.update",
        input={"companyId": "comp_123"},
    ),
    Case(
        id="companies.update-every-argument-aware-datetime",
        call=lambda c: c.companies.update(
            company_id="comp_123",
            name="Acme Corporation",
            domain="acme.example",
            created_at=datetime(2023, 12, 1, 10, 0, 0, 123456, tzinfo=CET),
        ),
        path="companies.update",
        input={
            "companyId": "comp_123",
            "name": "Acme Corporation",
            "domain": "acme.example",
            "createdAt": Date("2023-12-01T09:00:00.123Z"),
        },
    ),
    Case(
        id="companies.smart_link-minimal",
        call=lambda c: c.companies.smart_link(external_org_id="org_123", label="Production"),
        path="companies.smartLink",
        input={"externalOrgId": "org_123", "label": "Production"},
    ),
    Case(
        id="companies.smart_link-every-argument",
        call=lambda c: c.companies.smart_link(
            external_org_id="org_123",
            label="Production",
            hints=Hints(company_name="Acme", domain="acme.example", emails=["jane@acme.example"]),
            min_confidence=0.9,
        ),
        path="companies.smartLink",
        input={
            "externalOrgId": "org_123",
            "label": "Production",
            "hints": {
                "companyName": "Acme",
                "domain": "acme.example",
                "emails": ["jane@acme.example"],
            },
            "minConfidence": 0.9,
        },
    ),
    Case(
        id="companies.smart_link-hints-with-none",
        call=lambda c: c.companies.smart_link(
            external_org_id="org_123",
            label="Production",
            hints={"company_name": None, "domain": "acme.example", "emails": None},
        ),
        path="companies.smartLink",
        input={
            "externalOrgId": "org_123",
            "label": "Production",
            "hints": {"domain": "acme.example"},
        },
    ),
    Case(
        id="contacts.create-minimal",
        call=lambda c: c.contacts.create(company_id="comp_123", email="jane@acme.example"),
        path="contacts.create",
        input={"companyId": "comp_123", "email": "jane@acme.example"},
    ),
    Case(
        id="contacts.create-every-argument",
        call=lambda c: c.contacts.create(
            company_id="comp_123",
            email="jane@acme.example",
            name="Jane Doe",
            role="CTO",
            is_primary=True,
            avatar_url="https://cdn.acme.example/jane.png",
            metadata={
                "slackId": "U123ABC",
                "source_system": "hubspot",
                "nested": {"innerKey": [1, None, True]},
                "last.seen": datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
            },
        ),
        path="contacts.create",
        input={
            "companyId": "comp_123",
            "email": "jane@acme.example",
            "name": "Jane Doe",
            "role": "CTO",
            "isPrimary": True,
            "avatarUrl": "https://cdn.acme.example/jane.png",
            "metadata": {
                "slackId": "U123ABC",
                "source_system": "hubspot",
                "nested": {"innerKey": [1, None, True]},
                "last.seen": Date(ISO),
            },
        },
    ),
    Case(
        id="contacts.bulk_upsert-dicts-and-models",
        call=lambda c: c.contacts.bulk_upsert(
            company_id="comp_123",
            contacts=[
                {
                    "email": "jane@acme.example",
                    "name": "Jane Doe",
                    "role": "CTO",
                    "is_primary": True,
                    "avatar_url": "https://cdn.acme.example/jane.png",
                    "metadata": {"slackId": "U123ABC", "source_system": "hubspot"},
                },
                {"email": "jane@acme.example"},
                ContactInput(
                    email="jane@acme.example",
                    name="Max",
                    role="Engineer",
                    is_primary=False,
                    avatar_url="https://cdn.acme.example/max.png",
                    metadata={"slackId": "U456", "deleted_at": None},
                ),
                ContactInput(email="jane@acme.example"),
            ],
        ),
        path="contacts.bulkUpsert",
        input={
            "companyId": "comp_123",
            "contacts": [
                {
                    "email": "jane@acme.example",
                    "name": "Jane Doe",
                    "role": "CTO",
                    "isPrimary": True,
                    "avatarUrl": "https://cdn.acme.example/jane.png",
                    "metadata": {"slackId": "U123ABC", "source_system": "hubspot"},
                },
                {"email": "jane@acme.example"},
                {
                    "email": "jane@acme.example",
                    "name": "Max",
                    "role": "Engineer",
                    "isPrimary": False,
                    "avatarUrl": "https://cdn.acme.example/max.png",
                    "metadata": {"slackId": "U456", "deleted_at": None},
                },
                {"email": "jane@acme.example"},
            ],
        },
    ),
    Case(
        id="contacts.bulk_upsert-none-fields",
        call=lambda c: c.contacts.bulk_upsert(
            company_id="comp_123",
            contacts=[
                {"email": "jane@acme.example", "name": None, "is_primary": None, "metadata": None},
                ContactInput(email="jane@acme.example", role=None, avatar_url=None),
            ],
        ),
        path="contacts.bulkUpsert",
        input={
            "companyId": "comp_123",
            "contacts": [{"email": "jane@acme.example"}, {"email": "jane@acme.example"}],
        },
    ),
    Case(
        id="features.check-characters-to-encode",
        # Characters a query string must percent-encode: `+` would arrive as a space.
        call=lambda c: c.features.check(company_id="comp 1+2/é&x=y?#%", feature_code="ai_credit"),
        path="features.check",
        input={"companyId": "comp 1+2/é&x=y?#%", "featureCode": "ai_credit"},
    ),
    Case(
        id="features.set_access-minimal",
        call=lambda c: c.features.set_access(company_id="comp_123", feature_code="ai_credit"),
        path="features.setAccess",
        input={"companyId": "comp_123", "featureCode": "ai_credit"},
    ),
    Case(
        id="features.set_access-nulls",
        call=lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="ai_credit",
            is_enabled=True,
            quantity_limit=None,
            included_quantity=None,
            source="trial",
            valid_until=None,
        ),
        path="features.setAccess",
        input={
            "companyId": "comp_123",
            "featureCode": "ai_credit",
            "isEnabled": True,
            "quantityLimit": None,
            "includedQuantity": None,
            "source": "trial",
            "validUntil": None,
        },
    ),
    Case(
        id="features.set_access-by-external-org-id-datetime",
        call=lambda c: c.features.set_access(
            external_org_id="org_123",
            feature_code="ai_credit",
            is_enabled=False,
            quantity_limit=500,
            included_quantity=100,
            config={"maxTokens": 4096, "snake_key": "premium", "nested": {"innerKey": None}},
            source="api",
            valid_until=datetime(2025, 6, 30, tzinfo=UTC),
        ),
        path="features.setAccess",
        input={
            "externalOrgId": "org_123",
            "featureCode": "ai_credit",
            "isEnabled": False,
            "quantityLimit": 500,
            "includedQuantity": 100,
            "config": {"maxTokens": 4096, "snake_key": "premium", "nested": {"innerKey": None}},
            "source": "api",
            "validUntil": Date("2025-06-30T00:00:00.000Z"),
        },
    ),
    Case(
        id="features.set_access-offset-string-and-zero-limits",
        call=lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="sso",
            quantity_limit=0,
            included_quantity=0,
            source="subscription",
            valid_until=ISO_OFFSET,
        ),
        path="features.setAccess",
        input={
            "companyId": "comp_123",
            "featureCode": "sso",
            "quantityLimit": 0,
            "includedQuantity": 0,
            "source": "subscription",
            "validUntil": Date(ISO),
        },
    ),
    Case(
        id="features.set_access-iso-string",
        call=lambda c: c.features.set_access(
            company_id="comp_123", feature_code="sso", source="manual", valid_until=ISO
        ),
        path="features.setAccess",
        input={
            "companyId": "comp_123",
            "featureCode": "sso",
            "source": "manual",
            "validUntil": Date(ISO),
        },
    ),
    Case(
        id="features.set_access-negative-offset-nanoseconds",
        call=lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="sso",
            valid_until="2024-01-15T05:30:00.123456789-05:00",
        ),
        path="features.setAccess",
        input={
            "companyId": "comp_123",
            "featureCode": "sso",
            "validUntil": Date("2024-01-15T10:30:00.123Z"),
        },
    ),
    Case(
        id="billing.track_usage-with-key-and-metadata",
        call=lambda c: c.billing.track_usage(
            company_id="comp_123",
            feature_code="ai_credit",
            quantity=10,
            idempotency_key="request_42",
            metadata={"model": "gpt-4", "maxTokens": 1500, "request_id": "r1"},
        ),
        path="billing.trackUsage",
        input={
            "companyId": "comp_123",
            "featureCode": "ai_credit",
            "quantity": 10,
            "idempotencyKey": "request_42",
            "metadata": {"model": "gpt-4", "maxTokens": 1500, "request_id": "r1"},
        },
    ),
    Case(
        id="billing.link_subscription-minimal",
        call=lambda c: c.billing.link_subscription(
            company_id="comp_123", stripe_subscription_id="sub_1OaBcDeFgHiJkL"
        ),
        path="billing.linkSubscription",
        input={"companyId": "comp_123", "stripeSubscriptionId": "sub_1OaBcDeFgHiJkL"},
    ),
    Case(
        id="billing.link_subscription-every-argument",
        call=lambda c: c.billing.link_subscription(
            company_id="comp_123",
            stripe_subscription_id="sub_1OaBcDeFgHiJkL",
            stripe_customer_id="cus_123",
            tier_code="pro",
            display_name="Pro (monthly)",
        ),
        path="billing.linkSubscription",
        input={
            "companyId": "comp_123",
            "stripeSubscriptionId": "sub_1OaBcDeFgHiJkL",
            "stripeCustomerId": "cus_123",
            "tierCode": "pro",
            "displayName": "Pro (monthly)",
        },
    ),
    Case(
        id="tiers.apply-minimal",
        call=lambda c: c.tiers.apply("pro", company_id="comp_123"),
        path="tiers.applyTier",
        input={"tierCode": "pro", "companyId": "comp_123"},
    ),
    Case(
        id="tiers.apply-overrides",
        call=lambda c: c.tiers.apply(
            "pro",
            company_id="comp_123",
            features={"ai_credit": {"included_quantity": 100}, "seats": {"max_quantity": 10}},
        ),
        path="tiers.applyTier",
        input={
            "tierCode": "pro",
            "companyId": "comp_123",
            "features": {
                "ai_credit": {"included_quantity": 100},
                "seats": {"max_quantity": 10},
            },
        },
    ),
    Case(
        id="subscriptions.create-minimal",
        call=lambda c: c.subscriptions.create("pro", company_id="comp_123"),
        path="tiers.applyTier",
        input={"tierCode": "pro", "companyId": "comp_123"},
    ),
    Case(
        id="subscriptions.create-overrides",
        call=lambda c: c.subscriptions.create(
            "pro",
            company_id="comp_123",
            features={"ai_credit": {"included_quantity": 100, "modelTier": "premium"}},
        ),
        path="tiers.applyTier",
        input={
            "tierCode": "pro",
            "companyId": "comp_123",
            "features": {"ai_credit": {"included_quantity": 100, "modelTier": "premium"}},
        },
    ),
    Case(
        id="links.create-minimal",
        call=lambda c: c.links.create(company_id="comp_123", external_org_id="org_123"),
        path="links.create",
        input={"companyId": "comp_123", "externalOrgId": "org_123"},
    ),
    Case(
        id="links.create-every-argument",
        call=lambda c: c.links.create(
            company_id="comp_123",
            external_org_id="org_123",
            label="Production",
            external_user_id="user_42",
        ),
        path="links.create",
        input={
            "companyId": "comp_123",
            "externalOrgId": "org_123",
            "label": "Production",
            "externalUserId": "user_42",
        },
    ),
    Case(
        id="links.reset-delete-contacts",
        call=lambda c: c.links.reset(delete_contacts=True),
        path="links.reset",
        input={"deleteContacts": True},
    ),
]


def _with_defaults(cases: list[Case]) -> list[Case]:
    first: dict[str, Case] = {}
    for case in cases:
        if case.output is not None or case.expected is not None:
            first.setdefault(case.path, case)
    return [
        case
        if case.output is not None or case.expected is not None
        else replace(case, output=first[case.path].output, expected=first[case.path].expected)
        for case in cases
    ]


CASES = _with_defaults(CASES)


# --- every method's arguments ------------------------------------------------------------


Getter = Callable[[Any], Callable[..., Any]]


@dataclass(frozen=True)
class Method:
    get: Getter
    required: dict[str, Any]
    """Realistic values of the arguments the call needs."""
    minimal_wire: dict[str, Any]
    """The input sent with only those."""
    optional: tuple[str, ...] = ()
    """Optional arguments for which ``None`` means "not given"."""


METHODS: dict[str, Method] = {
    "onboard": Method(
        lambda c: c.onboard,
        {"external_org_id": "org_1", "label": "My Product"},
        {"externalOrgId": "org_1", "label": "My Product"},
        (
            "hints",
            "tier_code",
            "checkout_session_id",
            "stripe_subscription_id",
            "stripe_customer_id",
            "contact_email",
            "contact_name",
            "created_at",
        ),
    ),
    "companies.get_by_product_link": Method(
        lambda c: c.companies.get_by_product_link,
        {"external_org_id": "org_1"},
        {"externalOrgId": "org_1"},
    ),
    "companies.create": Method(
        lambda c: c.companies.create,
        {"name": "Acme Inc"},
        {"name": "Acme Inc"},
        ("domain", "external_org_id", "label", "contact_email", "contact_name", "created_at"),
    ),
    "companies.update": Method(
        lambda c: c.companies.update,
        {"company_id": "comp_1"},
        {"companyId": "comp_1"},
        ("name", "domain", "created_at"),
    ),
    "companies.smart_link": Method(
        lambda c: c.companies.smart_link,
        {"external_org_id": "org_1", "label": "My Product"},
        {"externalOrgId": "org_1", "label": "My Product"},
        ("hints", "min_confidence"),
    ),
    "contacts.create": Method(
        lambda c: c.contacts.create,
        {"company_id": "comp_1", "email": "jane@acme.com"},
        {"companyId": "comp_1", "email": "jane@acme.com"},
        ("name", "role", "is_primary", "avatar_url", "metadata"),
    ),
    "contacts.bulk_upsert": Method(
        lambda c: c.contacts.bulk_upsert,
        {"company_id": "comp_1", "contacts": [{"email": "jane@acme.com"}]},
        {"companyId": "comp_1", "contacts": [{"email": "jane@acme.com"}]},
    ),
    "contacts.list": Method(
        lambda c: c.contacts.list,
        {"company_id": "comp_1"},
        {"companyId": "comp_1"},
        ("primary_only",),
    ),
    "features.check": Method(
        lambda c: c.features.check,
        {"company_id": "comp_1", "feature_code": "ai_credit"},
        {"companyId": "comp_1", "featureCode": "ai_credit"},
    ),
    "features.list_access": Method(
        lambda c: c.features.list_access, {"company_id": "comp_1"}, {"companyId": "comp_1"}
    ),
    "features.set_access": Method(
        lambda c: c.features.set_access,
        {"company_id": "comp_1", "feature_code": "ai_credit"},
        {"companyId": "comp_1", "featureCode": "ai_credit"},
        ("external_org_id", "is_enabled", "config", "source"),
    ),
    "features.get_access_by_external_org_id": Method(
        lambda c: c.features.get_access_by_external_org_id,
        {"external_org_id": "org_1"},
        {"externalOrgId": "org_1"},
    ),
    "features.check_by_external_org_id": Method(
        lambda c: c.features.check_by_external_org_id,
        {"external_org_id": "org_1", "feature_code": "ai_credit"},
        {"externalOrgId": "org_1", "featureCode": "ai_credit"},
    ),
    "billing.track_usage": Method(
        lambda c: c.billing.track_usage,
        {"company_id": "comp_1", "feature_code": "ai_credit", "quantity": 3},
        {"companyId": "comp_1", "featureCode": "ai_credit", "quantity": 3},
        ("metadata", "idempotency_key"),
    ),
    "billing.claim_checkout": Method(
        lambda c: c.billing.claim_checkout,
        {"company_id": "comp_1", "checkout_session_id": "cs_1"},
        {"companyId": "comp_1", "checkoutSessionId": "cs_1"},
    ),
    "billing.link_subscription": Method(
        lambda c: c.billing.link_subscription,
        {"company_id": "comp_1", "stripe_subscription_id": "sub_1"},
        {"companyId": "comp_1", "stripeSubscriptionId": "sub_1"},
        ("stripe_customer_id", "tier_code", "display_name"),
    ),
    "billing.get_status": Method(
        lambda c: c.billing.get_status, {"company_id": "comp_1"}, {"companyId": "comp_1"}
    ),
    "tiers.get": Method(lambda c: c.tiers.get, {"tier_code": "pro"}, {"tierCode": "pro"}),
    "tiers.apply": Method(
        lambda c: c.tiers.apply,
        {"tier_code": "pro", "company_id": "comp_1"},
        {"tierCode": "pro", "companyId": "comp_1"},
        ("features",),
    ),
    "subscriptions.create": Method(
        lambda c: c.subscriptions.create,
        {"tier_code": "pro", "company_id": "comp_1"},
        {"tierCode": "pro", "companyId": "comp_1"},
        ("features",),
    ),
    "links.create": Method(
        lambda c: c.links.create,
        {"company_id": "comp_1", "external_org_id": "org_1"},
        {"companyId": "comp_1", "externalOrgId": "org_1"},
        ("label", "external_user_id"),
    ),
    "links.reset": Method(lambda c: c.links.reset, {}, {}, ("delete_contacts", "reset_mrr")),
}


PATHS: dict[str, str] = {case.id.split("-")[0]: case.path for case in CASES}
"""The procedure of each public method (``"tiers.apply"`` -> ``"tiers.applyTier"``)."""
