"""Every public method of the client: the request it sends, and how its answer is parsed.

Also the input rules: camelCase field names with free-form maps passed through untouched,
omitted vs ``None``, timestamps, and arguments refused before anything is sent.
"""

from __future__ import annotations

import json
import math
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pydantic
import pytest
import respx

from chatarmin_os import (
    APIResponseValidationError,
    ApplyTierResult,
    AsyncChatarminOS,
    BaseFee,
    BillingStatus,
    BulkUpsertResult,
    ChatarminOSError,
    ClaimCheckoutResult,
    Company,
    Contact,
    ContactInput,
    FeatureAccess,
    FeatureAccessDetail,
    Hints,
    InvalidInputError,
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
from tests.helpers import API_KEY, BASE_URL, TRANSFORMERS, ok, raw_input, sent_input

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

FREE_MAP: dict[str, Any] = {
    "included_quantity": 100,
    "slackId": "U024BE7LH",
    "max_quantity": 5,
    "nested_map": {"inner_key": {"deepCamelKey": [1, {"snake_in_list": True}]}},
    "with.dot": "kept",
    "UPPER_KEY": None,
}
"""A free-form map whose keys must all reach the wire exactly as given."""

# One TLS context for every test: building one per client makes each test ~40 ms slower.
_TLS = ssl.create_default_context()

NO_INPUT = object()
"""Marks a procedure called without input."""


@pytest.fixture
async def http_client():
    async with httpx.AsyncClient(verify=_TLS) as client:
        yield client


def make_client(http_client: httpx.AsyncClient, transformer: str = "json") -> AsyncChatarminOS:
    return AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        transformer=transformer,  # type: ignore[arg-type]
        max_retries=0,
        http_client=http_client,
    )


def catch_all(respx_mock: respx.MockRouter, answer: httpx.Response | None = None) -> respx.Route:
    """A route for every request to the API (a 500 unless told otherwise)."""
    return respx_mock.route(url__startswith=f"{BASE_URL}/").mock(
        return_value=answer if answer is not None else httpx.Response(500)
    )


def iso(value: datetime) -> str:
    """How JavaScript's ``toISOString`` writes a timestamp (written independently of the SDK)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """Canned output for a plain-JSON server: datetimes as ISO strings."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def superjson_wire(value: Any, dates: tuple[str, ...] = ()) -> dict[str, Any]:
    """The superjson wrapping of a JSON value whose ``dates`` paths are annotated ``Date``."""
    wrapped: dict[str, Any] = {"json": value}
    if dates:
        wrapped["meta"] = {"values": {path: ["Date"] for path in dates}, "v": 1}
    return wrapped


def datetimes_in(value: Any) -> list[datetime]:
    """Every datetime inside a value (models, dicts, lists)."""
    if isinstance(value, datetime):
        return [value]
    if isinstance(value, pydantic.BaseModel):
        return datetimes_in([*value.__dict__.values(), *(value.model_extra or {}).values()])
    if isinstance(value, dict):
        return datetimes_in(list(value.values()))
    if isinstance(value, list):
        return [found for item in value for found in datetimes_in(item)]
    return []


def expect_refused(error: BaseException, argument: str) -> None:
    assert isinstance(error, InvalidInputError)
    assert isinstance(error, ValueError)
    assert isinstance(error, ChatarminOSError)
    assert error.argument == argument
    assert str(error).startswith(f"{argument}: ")


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


# --- 1. every method, both transformers ------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    call: Callable[[AsyncChatarminOS], Any]
    method: str
    path: str
    wire: Any
    """The input as plain JSON (``NO_INPUT`` for none)."""
    in_dates: tuple[str, ...]
    """Input paths superjson annotates ``["Date"]``."""
    output: Any
    """The server's answer (datetimes as ``datetime``)."""
    out_dates: tuple[str, ...]
    """Output paths superjson annotates ``["Date"]``."""
    expected: Any


CASES = [
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
        method="POST",
        path="onboard",
        wire={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"companyName": "Acme Inc", "domain": "acme.com", "emails": ["jane@acme.com"]},
            "tierCode": "pro",
            "checkoutSessionId": "cs_test_a1B2c3",
            "stripeSubscriptionId": "sub_1OaBcD",
            "stripeCustomerId": "cus_PqRsT",
            "contactEmail": "jane@acme.com",
            "contactName": "Jane Doe",
            "createdAt": "2024-01-15T10:30:00.000Z",
        },
        in_dates=("createdAt",),
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
        out_dates=(),
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
        method="POST",
        path="onboard",
        wire={"externalOrgId": "org_xyz", "label": "My Product"},
        in_dates=(),
        output={
            "companyId": "comp_7f3a",
            "companyName": "Acme Inc",
            "linkStatus": "already_linked",
            "billingStatus": None,
            **EXTRA,
        },
        out_dates=(),
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
        method="GET",
        path="companies.getByProductLink",
        wire={"externalOrgId": "org_abc123"},
        in_dates=(),
        output={**COMPANY_OUT, "domain": None},
        out_dates=("createdAt",),
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
        method="POST",
        path="companies.create",
        wire={
            "name": "Acme Inc",
            "domain": "acme.com",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "contactEmail": "jane@acme.com",
            "contactName": "Jane Doe",
            "createdAt": "2024-01-15T10:30:00.000Z",
        },
        in_dates=("createdAt",),
        output=COMPANY_OUT,
        out_dates=("createdAt",),
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
        method="POST",
        path="companies.update",
        wire={
            "companyId": "comp_7f3a",
            "name": "Acme GmbH",
            "domain": "acme.de",
            "createdAt": "2023-06-01T12:00:00.123Z",
        },
        in_dates=("createdAt",),
        output={
            **COMPANY_OUT,
            "name": "Acme GmbH",
            "domain": "acme.de",
            "createdAt": datetime(2023, 6, 1, 12, 0, 0, 123000, tzinfo=UTC),
        },
        out_dates=("createdAt",),
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
        method="POST",
        path="companies.smartLink",
        wire={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"companyName": "Acme", "emails": ["jane@acme.com", "joe@acme.com"]},
            "minConfidence": 0.9,
        },
        in_dates=(),
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
        out_dates=(),
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
        method="POST",
        path="companies.smartLink",
        wire={
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "hints": {"domain": "acme.com"},
        },
        in_dates=(),
        output={
            "status": "linked",
            "companyId": "comp_7f3a",
            "customerName": "Acme Inc",
            "confidence": 95,
            "suggestions": [],
            **EXTRA,
        },
        out_dates=(),
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
        method="POST",
        path="contacts.create",
        wire={
            "companyId": "comp_7f3a",
            "email": "jane@acme.com",
            "name": "Jane Doe",
            "role": "CTO",
            "isPrimary": True,
            "avatarUrl": "https://cdn.acme.com/jane.png",
            "metadata": {"slackId": "U024BE7LH", "hubspot_id": 4711, "prefs": {"opt_in": True}},
        },
        in_dates=(),
        output={**JANE_OUT, "isNew": True, **EXTRA},
        out_dates=("createdAt", "updatedAt"),
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
        method="POST",
        path="contacts.bulkUpsert",
        wire={
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
        in_dates=(),
        output={
            "created": 1,
            "updated": 1,
            "contacts": [{**JANE_OUT, "isNew": False}, {**JOE_OUT, "isNew": True}],
            **EXTRA,
        },
        out_dates=(
            "contacts.0.createdAt",
            "contacts.0.updatedAt",
            "contacts.1.createdAt",
            "contacts.1.updatedAt",
        ),
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
        method="GET",
        path="contacts.list",
        wire={"companyId": "comp_7f3a"},
        in_dates=(),
        output=[{**JANE_OUT, **EXTRA}, JOE_OUT],
        out_dates=("0.createdAt", "0.updatedAt", "1.createdAt", "1.updatedAt"),
        expected=[jane(serverRegion="eu-central-1"), joe()],
    ),
    Case(
        id="contacts.list-primary_only",
        call=lambda c: c.contacts.list("comp_7f3a", primary_only=True),
        method="GET",
        path="contacts.list",
        wire={"companyId": "comp_7f3a", "primaryOnly": True},
        in_dates=(),
        output=[{**JANE_OUT, **EXTRA}],
        out_dates=("0.createdAt", "0.updatedAt"),
        expected=[jane(serverRegion="eu-central-1")],
    ),
    Case(
        id="features.check",
        call=lambda c: c.features.check(company_id="comp_7f3a", feature_code="ai_credit"),
        method="GET",
        path="features.check",
        wire={"companyId": "comp_7f3a", "featureCode": "ai_credit"},
        in_dates=(),
        output={**AI_ACCESS_OUT, **EXTRA},
        out_dates=(),
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
        method="GET",
        path="features.listAccess",
        wire={"companyId": "comp_7f3a"},
        in_dates=(),
        output=[{**AI_DETAIL_OUT, **EXTRA}, SSO_DETAIL_OUT],
        out_dates=("0.validUntil",),
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
        method="POST",
        path="features.setAccess",
        wire={
            "companyId": "comp_7f3a",
            "featureCode": "ai_credit",
            "isEnabled": True,
            "quantityLimit": 1000,
            "includedQuantity": 100,
            "config": {"model": "gpt-4", "max_tokens": 1500, "slackId": "C0123"},
            "source": "trial",
            "validUntil": "2025-12-31T23:59:59.000Z",
        },
        in_dates=("validUntil",),
        output={**AI_DETAIL_OUT, **EXTRA},
        out_dates=("validUntil",),
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
        method="POST",
        path="features.setAccess",
        wire={
            "externalOrgId": "org_abc123",
            "featureCode": "sso",
            "isEnabled": False,
            "quantityLimit": None,
            "includedQuantity": None,
            "validUntil": None,
        },
        in_dates=(),
        output={**SSO_DETAIL_OUT, **EXTRA},
        out_dates=(),
        expected=sso_detail(serverRegion="eu-central-1"),
    ),
    Case(
        id="features.get_access_by_external_org_id",
        call=lambda c: c.features.get_access_by_external_org_id("org_abc123"),
        method="GET",
        path="features.getAccessByExternalOrgId",
        wire={"externalOrgId": "org_abc123"},
        in_dates=(),
        output={"companyId": "comp_7f3a", "features": [AI_DETAIL_OUT, SSO_DETAIL_OUT], **EXTRA},
        out_dates=("features.0.validUntil",),
        expected=OrgFeatureAccess(
            company_id="comp_7f3a",
            features=[ai_detail(), sso_detail()],
            serverRegion="eu-central-1",
        ),
    ),
    Case(
        id="features.check_by_external_org_id",
        call=lambda c: c.features.check_by_external_org_id("org_abc123", "seats"),
        method="GET",
        path="features.checkByExternalOrgId",
        wire={"externalOrgId": "org_abc123", "featureCode": "seats"},
        in_dates=(),
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
        out_dates=(),
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
        method="POST",
        path="billing.trackUsage",
        wire={
            "companyId": "comp_7f3a",
            "featureCode": "ai_credit",
            "quantity": 25,
            "idempotencyKey": "request_42",
            "metadata": {"model": "gpt-4", "max_tokens": 1500},
        },
        in_dates=(),
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
        out_dates=(),
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
        method="POST",
        path="billing.claimCheckout",
        wire={"companyId": "comp_7f3a", "checkoutSessionId": "cs_test_a1B2c3"},
        in_dates=(),
        output={
            "subscriptionId": "subdb_91",
            "alreadyClaimed": False,
            "tierCode": "pro",
            "featuresApplied": 3,
            **EXTRA,
        },
        out_dates=(),
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
        method="POST",
        path="billing.linkSubscription",
        wire={
            "companyId": "comp_7f3a",
            "stripeSubscriptionId": "sub_1OaBcD",
            "stripeCustomerId": "cus_PqRsT",
            "tierCode": "pro",
            "displayName": "Pro (yearly)",
        },
        in_dates=(),
        output={
            "subscriptionId": "subdb_92",
            "alreadyLinked": True,
            "featuresApplied": 0,
            **EXTRA,
        },
        out_dates=(),
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
        method="GET",
        path="billing.getStatus",
        wire={"companyId": "comp_7f3a"},
        in_dates=(),
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
        out_dates=("activeSubscriptions.0.currentPeriodEnd",),
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
        method="GET",
        path="tiers.list",
        wire=NO_INPUT,
        in_dates=(),
        output=[
            {"code": "free", "name": "Free", "description": None, **EXTRA},
            {"code": "pro", "name": "Pro", "description": "For growing teams"},
        ],
        out_dates=(),
        expected=[
            TierSummary(code="free", name="Free", description=None, serverRegion="eu-central-1"),
            TierSummary(code="pro", name="Pro", description="For growing teams"),
        ],
    ),
    Case(
        id="tiers.get",
        call=lambda c: c.tiers.get("pro"),
        method="GET",
        path="tiers.get",
        wire={"tierCode": "pro"},
        in_dates=(),
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
        out_dates=(),
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
        method="GET",
        path="tiers.get",
        wire={"tierCode": "free"},
        in_dates=(),
        output={
            "code": "free",
            "name": "Free",
            "description": None,
            "baseFee": None,
            "features": [],
            "stripePriceIds": [],
            **EXTRA,
        },
        out_dates=(),
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
        method="POST",
        path="tiers.applyTier",
        wire={
            "tierCode": "pro",
            "companyId": "comp_7f3a",
            "features": {
                "ai_credit": {"included_quantity": 500, "max_quantity": 2000, "model": "o1"}
            },
        },
        in_dates=(),
        output={"companyId": "comp_7f3a", "tierCode": "pro", "featuresApplied": 2, **EXTRA},
        out_dates=(),
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
        method="POST",
        path="tiers.applyTier",
        wire={
            "tierCode": "enterprise",
            "companyId": "comp_7f3a",
            "features": {"seats": {"max_quantity": 50, "slackId": "C1", "limits": {"per_day": 10}}},
        },
        in_dates=(),
        output={
            "companyId": "comp_7f3a",
            "tierCode": "enterprise",
            "featuresApplied": 5,
            **EXTRA,
        },
        out_dates=(),
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
        method="POST",
        path="links.create",
        wire={
            "companyId": "comp_7f3a",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "externalUserId": "user_42",
        },
        in_dates=(),
        output={
            "id": "lnk_1",
            "companyId": "comp_7f3a",
            "externalOrgId": "org_abc123",
            "label": "My Product",
            "externalUserId": "user_42",
            "createdAt": T_CREATED,
            **EXTRA,
        },
        out_dates=("createdAt",),
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
        method="POST",
        path="links.reset",
        wire={"deleteContacts": True, "resetMrr": True},
        in_dates=(),
        output={"linksDeleted": 3, "contactsDeleted": 7, "mrrReset": True, **EXTRA},
        out_dates=(),
        expected=ResetLinksResult(
            links_deleted=3, contacts_deleted=7, mrr_reset=True, serverRegion="eu-central-1"
        ),
    ),
    Case(
        id="links.reset-no_flags",
        call=lambda c: c.links.reset(),
        method="POST",
        path="links.reset",
        wire={},
        in_dates=(),
        output={"linksDeleted": 0, "contactsDeleted": 0, "mrrReset": False, **EXTRA},
        out_dates=(),
        expected=ResetLinksResult(
            links_deleted=0, contacts_deleted=0, mrr_reset=False, serverRegion="eu-central-1"
        ),
    ),
]


async def test_the_table_covers_every_public_method(http_client: httpx.AsyncClient) -> None:
    namespaces = ("companies", "contacts", "features", "billing", "tiers", "subscriptions", "links")
    async with make_client(http_client) as client:
        top_level = {
            name
            for name in dir(type(client))
            if not name.startswith("_") and callable(getattr(client, name))
        }
        # everything on the client itself that is not an API call
        assert top_level - set(namespaces) == {
            "onboard",
            "with_options",
            "local",
            "aclose",
            "flush",
        }
        public = {"onboard"}
        for namespace in namespaces:
            resource = getattr(client, namespace)
            public |= {
                f"{namespace}.{name}"
                for name in dir(type(resource))
                if not name.startswith("_") and callable(getattr(resource, name))
            }
    # features.check_many sends many features.check calls: tests/_async/test_batching.py;
    # billing.track_usage_later and flush, the usage buffer: tests/_async/test_usage_buffer.py
    assert {case.id.split("-")[0] for case in CASES} == public - {
        "features.check_many",
        "billing.track_usage_later",
    }


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_method(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, transformer: str, case: Case
) -> None:
    if transformer == "superjson":
        answer = ok(case.output, "superjson")
        # the canned answer carries a Date annotation on every timestamp
        assert json.loads(answer.content) == {
            "result": {"data": superjson_wire(plain(case.output), case.out_dates)}
        }
    else:
        answer = ok(plain(case.output))
    api = catch_all(respx_mock, answer)

    async with make_client(http_client, transformer) as client:
        result = await case.call(client)

    assert api.call_count == 1
    request = api.calls.last.request
    assert request.method == case.method
    assert request.url.scheme == "https"
    assert request.url.host == "os.example.test"
    assert request.url.path == f"/api/v1/{case.path}"
    if case.method == "GET":
        assert request.content == b""
        assert "content-type" not in request.headers
    else:
        assert request.url.query == b""
        assert request.headers["content-type"] == "application/json"

    if case.wire is NO_INPUT:
        if transformer == "superjson":
            assert raw_input(request) == {"json": None, "meta": {"values": ["undefined"], "v": 1}}
        else:
            assert str(request.url) == f"{BASE_URL}/{case.path}"
    else:
        if case.method == "GET":
            assert list(request.url.params) == ["input"]
        expected_wire = (
            superjson_wire(case.wire, case.in_dates) if transformer == "superjson" else case.wire
        )
        assert raw_input(request) == expected_wire

    assert result == case.expected
    first = result[0] if isinstance(result, list) else result
    assert first.model_extra == EXTRA
    assert first.serverRegion == "eu-central-1"
    found = datetimes_in(result)
    assert sorted(found) == sorted(datetimes_in(case.output))
    assert all(moment.utcoffset() == timedelta(0) for moment in found)


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_get_by_product_link_returns_none_when_not_linked(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, transformer: str
) -> None:
    api = catch_all(respx_mock, ok(None, transformer))
    async with make_client(http_client, transformer) as client:
        result = await client.companies.get_by_product_link(external_org_id="org_unknown")
    assert result is None
    assert api.call_count == 1
    assert sent_input(api.calls.last.request, transformer) == {"externalOrgId": "org_unknown"}


# --- 2. field names: camelCase for known fields, free-form maps untouched -------------

FREE_FORM_CASES = [
    pytest.param(
        lambda c: c.contacts.create(
            company_id="comp_1", email="jane@acme.com", is_primary=False, metadata=FREE_MAP
        ),
        {"companyId": "comp_1", "email": "jane@acme.com", "isPrimary": False, "metadata": FREE_MAP},
        id="contacts.create-metadata",
    ),
    pytest.param(
        lambda c: c.billing.track_usage(
            company_id="comp_1",
            feature_code="ai_credit",
            quantity=1,
            idempotency_key="k1",
            metadata=FREE_MAP,
        ),
        {
            "companyId": "comp_1",
            "featureCode": "ai_credit",
            "quantity": 1,
            "idempotencyKey": "k1",
            "metadata": FREE_MAP,
        },
        id="billing.track_usage-metadata",
    ),
    pytest.param(
        lambda c: c.features.set_access(
            company_id="comp_1", feature_code="ai_credit", is_enabled=True, config=FREE_MAP
        ),
        {"companyId": "comp_1", "featureCode": "ai_credit", "isEnabled": True, "config": FREE_MAP},
        id="features.set_access-config",
    ),
    pytest.param(
        lambda c: c.tiers.apply(
            "pro", company_id="comp_1", features={"ai_credit": FREE_MAP, "seats": {}}
        ),
        {
            "tierCode": "pro",
            "companyId": "comp_1",
            "features": {"ai_credit": FREE_MAP, "seats": {}},
        },
        id="tiers.apply-overrides",
    ),
    pytest.param(
        lambda c: c.subscriptions.create(
            "pro", company_id="comp_1", features={"ai_credit_v2": FREE_MAP}
        ),
        {"tierCode": "pro", "companyId": "comp_1", "features": {"ai_credit_v2": FREE_MAP}},
        id="subscriptions.create-overrides",
    ),
    pytest.param(
        lambda c: c.contacts.bulk_upsert(
            company_id="comp_1",
            contacts=[
                {"email": "jane@acme.com", "avatar_url": "https://a.io", "metadata": FREE_MAP}
            ],
        ),
        {
            "companyId": "comp_1",
            "contacts": [
                {"email": "jane@acme.com", "avatarUrl": "https://a.io", "metadata": FREE_MAP}
            ],
        },
        id="contacts.bulk_upsert-metadata",
    ),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize(("call", "expected"), FREE_FORM_CASES)
async def test_free_form_keys_are_sent_untouched(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    transformer: str,
    call: Callable[[AsyncChatarminOS], Any],
    expected: dict[str, Any],
) -> None:
    api = catch_all(respx_mock, ok({}, transformer))
    async with make_client(http_client, transformer) as client:
        with pytest.raises(APIResponseValidationError):  # {} is not a valid output
            await call(client)
    raw = raw_input(api.calls.last.request)
    assert raw == (superjson_wire(expected) if transformer == "superjson" else expected)


HINTS_WIRE = {
    "companyName": "Acme Inc",
    "domain": "acme.com",
    "emails": ["jane@acme.com", "j@a.io"],
}
HINTS_FORMS = [
    pytest.param(
        {"company_name": "Acme Inc", "domain": "acme.com", "emails": ["jane@acme.com", "j@a.io"]},
        id="snake-dict",
    ),
    pytest.param(
        {"companyName": "Acme Inc", "domain": "acme.com", "emails": ["jane@acme.com", "j@a.io"]},
        id="camel-dict",
    ),
    pytest.param(
        Hints(company_name="Acme Inc", domain="acme.com", emails=["jane@acme.com", "j@a.io"]),
        id="model",
    ),
]
HINTS_CALLS = [
    pytest.param(
        lambda c, hints: c.onboard(external_org_id="org_1", label="My Product", hints=hints),
        id="onboard",
    ),
    pytest.param(
        lambda c, hints: c.companies.smart_link(
            external_org_id="org_1", label="My Product", hints=hints
        ),
        id="smart_link",
    ),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize("call", HINTS_CALLS)
@pytest.mark.parametrize("hints", HINTS_FORMS)
async def test_hints_in_every_form(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    transformer: str,
    call: Callable[..., Any],
    hints: Any,
) -> None:
    api = catch_all(respx_mock, ok({}, transformer))
    async with make_client(http_client, transformer) as client:
        with pytest.raises(APIResponseValidationError):
            await call(client, hints)
    expected = {"externalOrgId": "org_1", "label": "My Product", "hints": HINTS_WIRE}
    raw = raw_input(api.calls.last.request)
    assert raw == (superjson_wire(expected) if transformer == "superjson" else expected)


CONTACT_WIRE = {
    "email": "jane@acme.com",
    "name": "Jane Doe",
    "role": "CTO",
    "isPrimary": True,
    "avatarUrl": "https://cdn.acme.com/jane.png",
    "metadata": FREE_MAP,
}
CONTACT_FORMS = [
    pytest.param(
        {
            "email": "jane@acme.com",
            "name": "Jane Doe",
            "role": "CTO",
            "is_primary": True,
            "avatar_url": "https://cdn.acme.com/jane.png",
            "metadata": FREE_MAP,
        },
        id="snake-dict",
    ),
    pytest.param(
        {
            "email": "jane@acme.com",
            "name": "Jane Doe",
            "role": "CTO",
            "isPrimary": True,
            "avatarUrl": "https://cdn.acme.com/jane.png",
            "metadata": FREE_MAP,
        },
        id="camel-dict",
    ),
    pytest.param(
        ContactInput(
            email="jane@acme.com",
            name="Jane Doe",
            role="CTO",
            is_primary=True,
            avatar_url="https://cdn.acme.com/jane.png",
            metadata=FREE_MAP,
        ),
        id="model",
    ),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize("contact", CONTACT_FORMS)
async def test_contacts_in_every_form(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, transformer: str, contact: Any
) -> None:
    api = catch_all(respx_mock, ok({}, transformer))
    async with make_client(http_client, transformer) as client:
        with pytest.raises(APIResponseValidationError):
            await client.contacts.bulk_upsert(
                company_id="comp_1", contacts=[contact, {"email": "joe@acme.com"}]
            )
    expected = {"companyId": "comp_1", "contacts": [CONTACT_WIRE, {"email": "joe@acme.com"}]}
    raw = raw_input(api.calls.last.request)
    assert raw == (superjson_wire(expected) if transformer == "superjson" else expected)


# --- 3. omitted vs None ---------------------------------------------------------------

Getter = Callable[[AsyncChatarminOS], Callable[..., Any]]


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


async def sent_wire(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    method: Method,
    kwargs: dict[str, Any],
) -> Any:
    """Call a method with ``kwargs`` and return the (plain-JSON) input it sent."""
    api = catch_all(respx_mock, ok({}))
    async with make_client(http_client) as client:
        with pytest.raises(APIResponseValidationError):  # {} is not a valid output
            await method.get(client)(**kwargs)
    assert api.call_count == 1
    return raw_input(api.calls.last.request)


def without_generated_key(name: str, wire: Any) -> Any:
    """``track_usage`` always sends an idempotency key: check it is a uuid4, then drop it."""
    if name == "billing.track_usage":
        assert uuid.UUID(wire.pop("idempotencyKey")).version == 4
    return wire


@pytest.mark.parametrize("name", list(METHODS))
async def test_only_given_arguments_are_sent(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, name: str
) -> None:
    method = METHODS[name]
    wire = await sent_wire(respx_mock, http_client, method, method.required)
    assert without_generated_key(name, wire) == method.minimal_wire


@pytest.mark.parametrize(
    ("name", "argument"),
    [(name, argument) for name, method in METHODS.items() for argument in method.optional],
)
async def test_none_is_the_same_as_leaving_out(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, name: str, argument: str
) -> None:
    method = METHODS[name]
    wire = await sent_wire(respx_mock, http_client, method, {**method.required, argument: None})
    assert without_generated_key(name, wire) == method.minimal_wire


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize(
    ("argument", "key"),
    [
        ("quantity_limit", "quantityLimit"),
        ("included_quantity", "includedQuantity"),
        ("valid_until", "validUntil"),
    ],
)
async def test_none_sends_null_where_null_means_something(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    transformer: str,
    argument: str,
    key: str,
) -> None:
    api = catch_all(respx_mock, ok({}, transformer))
    async with make_client(http_client, transformer) as client:
        with pytest.raises(APIResponseValidationError):
            await client.features.set_access(
                company_id="comp_1", feature_code="ai_credit", **{argument: None}
            )
    expected = {"companyId": "comp_1", "featureCode": "ai_credit", key: None}
    raw = raw_input(api.calls.last.request)
    assert raw == (superjson_wire(expected) if transformer == "superjson" else expected)
    assert b'"' + key.encode() + b'":null' in api.calls.last.request.content


async def test_false_and_zero_are_sent_not_dropped(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    wire = await sent_wire(
        respx_mock,
        http_client,
        METHODS["features.set_access"],
        {
            "company_id": "comp_1",
            "feature_code": "ai_credit",
            "is_enabled": False,
            "quantity_limit": 0,
            "included_quantity": 0,
            "config": {},
        },
    )
    assert wire == {
        "companyId": "comp_1",
        "featureCode": "ai_credit",
        "isEnabled": False,
        "quantityLimit": 0,
        "includedQuantity": 0,
        "config": {},
    }


@pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, 0.5])
async def test_min_confidence_bounds_are_allowed(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, value: float
) -> None:
    method = METHODS["companies.smart_link"]
    wire = await sent_wire(
        respx_mock, http_client, method, {**method.required, "min_confidence": value}
    )
    assert wire == {**method.minimal_wire, "minConfidence": value}
    assert type(wire["minConfidence"]) is type(value)


# --- 4. timestamps --------------------------------------------------------------------

TIMESTAMP_ARGS = [
    pytest.param("onboard", "created_at", "createdAt", id="onboard.created_at"),
    pytest.param("companies.create", "created_at", "createdAt", id="companies.create.created_at"),
    pytest.param("companies.update", "created_at", "createdAt", id="companies.update.created_at"),
    pytest.param(
        "features.set_access", "valid_until", "validUntil", id="features.set_access.valid_until"
    ),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize(("name", "argument", "key"), TIMESTAMP_ARGS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2024, 1, 15, 16, 0, tzinfo=IST), "2024-01-15T10:30:00.000Z", id="+05:30"
        ),
        pytest.param(
            datetime(2024, 1, 14, 23, 59, 59, 999999, tzinfo=EST),
            "2024-01-15T04:59:59.999Z",
            id="-05:00-micro",
        ),
        pytest.param(
            datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "2024-01-15T10:30:00.000Z", id="utc"
        ),
        pytest.param("2024-01-15T11:30:00+01:00", "2024-01-15T10:30:00.000Z", id="str+01:00"),
        pytest.param("2024-01-15T05:30:00.5-05:00", "2024-01-15T10:30:00.500Z", id="str-05:00"),
        pytest.param("2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000Z", id="strZ"),
        pytest.param("2024-01-15T10:30:00.123456789Z", "2024-01-15T10:30:00.123Z", id="strZ-nanos"),
    ],
)
async def test_timestamps_travel_as_utc_iso(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    transformer: str,
    name: str,
    argument: str,
    key: str,
    value: Any,
    expected: str,
) -> None:
    method = METHODS[name]
    api = catch_all(respx_mock, ok({}, transformer))
    async with make_client(http_client, transformer) as client:
        with pytest.raises(APIResponseValidationError):
            await method.get(client)(**method.required, **{argument: value})
    wire = {**method.minimal_wire, key: expected}
    raw = raw_input(api.calls.last.request)
    assert raw == (superjson_wire(wire, (key,)) if transformer == "superjson" else wire)


async def test_timestamps_before_year_1000_are_zero_padded(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    method = METHODS["companies.update"]
    wire = await sent_wire(
        respx_mock,
        http_client,
        method,
        {**method.required, "created_at": datetime(812, 5, 1, tzinfo=UTC)},
    )
    # ISO-8601 / toISOString always write four year digits
    assert wire == {**method.minimal_wire, "createdAt": "0812-05-01T00:00:00.000Z"}


@pytest.mark.parametrize(("name", "argument", "key"), TIMESTAMP_ARGS)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(datetime(2024, 1, 15, 10, 30), "naive", id="naive-datetime"),
        pytest.param("2024-01-15T10:30:00", "UTC offset", id="str-no-offset"),
        pytest.param("2024-01-15T10:30:00.000", "UTC offset", id="str-ms-no-offset"),
        pytest.param("2024-01-15", "UTC offset", id="date-only"),
        pytest.param("15/01/2024 10:30 UTC", "UTC offset", id="not-iso"),
        pytest.param("", "UTC offset", id="empty"),
        pytest.param(1705314600, "must be a datetime or an ISO-8601 string, got int", id="int"),
    ],
)
async def test_bad_timestamps_are_refused(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    name: str,
    argument: str,
    key: str,
    value: Any,
    problem: str,
) -> None:
    method = METHODS[name]
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await method.get(client)(**method.required, **{argument: value})
    expect_refused(info.value, argument)
    assert problem in info.value.problem
    assert api.call_count == 0


# --- 5. bad input is refused before anything is sent ----------------------------------

REQUIRED_STRINGS = [
    (name, argument)
    for name, method in METHODS.items()
    for argument, value in method.required.items()
    if isinstance(value, str)
]


@pytest.mark.parametrize("bad", [123, "", "   ", None, b"comp_1"], ids=repr)
@pytest.mark.parametrize(("name", "argument"), REQUIRED_STRINGS)
async def test_required_strings_are_checked(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    name: str,
    argument: str,
    bad: Any,
) -> None:
    method = METHODS[name]
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await method.get(client)(**{**method.required, argument: bad})
    expect_refused(info.value, argument)
    assert api.call_count == 0


BIG_LIST = [{"email": f"user{i}@acme.com"} for i in range(1001)]

BAD_INPUTS = [
    # wrong types of optional arguments
    ("companies.create", {"domain": 5}, "domain"),
    ("companies.create", {"contact_email": ""}, "contact_email"),
    ("companies.update", {"name": "   "}, "name"),
    ("onboard", {"tier_code": 1}, "tier_code"),
    ("links.create", {"label": ["My Product"]}, "label"),
    ("billing.link_subscription", {"display_name": 3}, "display_name"),
    ("contacts.create", {"is_primary": "yes"}, "is_primary"),
    ("contacts.create", {"is_primary": 1}, "is_primary"),
    ("contacts.create", {"metadata": ["slackId"]}, "metadata"),
    ("contacts.create", {"metadata": {1: "x"}}, "metadata"),
    ("contacts.list", {"primary_only": "yes"}, "primary_only"),
    ("links.reset", {"delete_contacts": 1}, "delete_contacts"),
    ("links.reset", {"reset_mrr": "true"}, "reset_mrr"),
    # quantity
    ("billing.track_usage", {"quantity": 0}, "quantity"),
    ("billing.track_usage", {"quantity": -1}, "quantity"),
    ("billing.track_usage", {"quantity": 1.5}, "quantity"),
    ("billing.track_usage", {"quantity": True}, "quantity"),
    ("billing.track_usage", {"quantity": "3"}, "quantity"),
    ("billing.track_usage", {"quantity": None}, "quantity"),
    ("billing.track_usage", {"idempotency_key": ""}, "idempotency_key"),
    ("billing.track_usage", {"idempotency_key": 42}, "idempotency_key"),
    ("billing.track_usage", {"metadata": "model=gpt-4"}, "metadata"),
    # min_confidence
    ("companies.smart_link", {"min_confidence": -0.1}, "min_confidence"),
    ("companies.smart_link", {"min_confidence": 1.5}, "min_confidence"),
    ("companies.smart_link", {"min_confidence": "high"}, "min_confidence"),
    ("companies.smart_link", {"min_confidence": True}, "min_confidence"),
    ("companies.smart_link", {"min_confidence": math.nan}, "min_confidence"),
    ("companies.smart_link", {"min_confidence": 80}, "min_confidence"),
    # hints
    ("companies.smart_link", {"hints": "acme.com"}, "hints"),
    ("companies.smart_link", {"hints": {"company": "Acme"}}, "hints.company"),
    ("onboard", {"hints": {"emails": "jane@acme.com"}}, "hints.emails"),
    ("onboard", {"hints": {"domain": ""}}, "hints.domain"),
    # contacts
    ("contacts.bulk_upsert", {"contacts": []}, "contacts"),
    ("contacts.bulk_upsert", {"contacts": BIG_LIST}, "contacts"),
    ("contacts.bulk_upsert", {"contacts": "jane@acme.com"}, "contacts"),
    ("contacts.bulk_upsert", {"contacts": {"email": "jane@acme.com"}}, "contacts"),
    ("contacts.bulk_upsert", {"contacts": None}, "contacts"),
    (
        "contacts.bulk_upsert",
        {"contacts": [{"email": "jane@acme.com"}, {"name": "No Mail"}]},
        "contacts[1].email",
    ),
    (
        "contacts.bulk_upsert",
        {"contacts": [{"email": "jane@acme.com", "phone": "+49 30 1234"}]},
        "contacts[0].phone",
    ),
    ("contacts.bulk_upsert", {"contacts": [{"email": ""}]}, "contacts[0].email"),
    (
        "contacts.bulk_upsert",
        {"contacts": [{"email": "jane@acme.com", "is_primary": "yes"}]},
        "contacts[0].is_primary",
    ),
    ("contacts.bulk_upsert", {"contacts": ["jane@acme.com"]}, "contacts[0]"),
    # set_access
    ("features.set_access", {"company_id": None}, "company_id"),
    ("features.set_access", {"external_org_id": "org_1"}, "company_id"),
    ("features.set_access", {"source": "stripe"}, "source"),
    ("features.set_access", {"source": "Manual"}, "source"),
    ("features.set_access", {"quantity_limit": -1}, "quantity_limit"),
    ("features.set_access", {"quantity_limit": 1.5}, "quantity_limit"),
    ("features.set_access", {"quantity_limit": True}, "quantity_limit"),
    ("features.set_access", {"quantity_limit": "100"}, "quantity_limit"),
    ("features.set_access", {"included_quantity": -5}, "included_quantity"),
    ("features.set_access", {"config": "model=gpt-4"}, "config"),
    ("features.set_access", {"is_enabled": "true"}, "is_enabled"),
    ("features.set_access", {"valid_until": 1735689599}, "valid_until"),
    # tier overrides
    ("tiers.apply", {"features": ["ai_credit"]}, "features"),
    ("tiers.apply", {"features": "ai_credit"}, "features"),
    ("tiers.apply", {"features": {"ai_credit": 100}}, "features['ai_credit']"),
    ("tiers.apply", {"features": {"ai_credit": None}}, "features['ai_credit']"),
    ("subscriptions.create", {"features": {"seats": [50]}}, "features['seats']"),
    ("subscriptions.create", {"features": {"": {"max_quantity": 1}}}, "features key"),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    BAD_INPUTS,
    ids=[f"{name}-{argument}-{index}" for index, (name, _, argument) in enumerate(BAD_INPUTS)],
)
async def test_bad_input_is_refused_before_sending(
    respx_mock: respx.MockRouter,
    http_client: httpx.AsyncClient,
    name: str,
    kwargs: dict[str, Any],
    argument: str,
) -> None:
    method = METHODS[name]
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await method.get(client)(**{**method.required, **kwargs})
    expect_refused(info.value, argument)
    assert api.call_count == 0


@pytest.mark.parametrize(
    "metadata",
    [{"ratio": math.nan}, {"tags": {"a", "b"}}, {"seen": object()}],
    ids=["nan", "set", "object"],
)
async def test_metadata_that_is_not_json_is_refused_before_sending(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, metadata: dict[str, Any]
) -> None:
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.contacts.create(company_id="comp_1", email="a@acme.com", metadata=metadata)
    assert isinstance(info.value, ValueError)
    assert info.value.argument == f"metadata.{next(iter(metadata))}"
    assert info.value.problem.startswith("cannot be sent as JSON: ")
    assert api.call_count == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"feature_code": "ai_credit"}, id="neither"),
        pytest.param(
            {"company_id": "comp_1", "external_org_id": "org_1", "feature_code": "ai_credit"},
            id="both",
        ),
    ],
)
async def test_set_access_needs_exactly_one_target(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, kwargs: dict[str, Any]
) -> None:
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.features.set_access(**kwargs)
    expect_refused(info.value, "company_id")
    assert info.value.problem == "give exactly one of company_id and external_org_id"
    assert api.call_count == 0


async def test_bulk_upsert_takes_exactly_1000(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    method = METHODS["contacts.bulk_upsert"]
    wire = await sent_wire(
        respx_mock, http_client, method, {"company_id": "comp_1", "contacts": BIG_LIST[:1000]}
    )
    assert wire == {"companyId": "comp_1", "contacts": BIG_LIST[:1000]}


async def test_bulk_upsert_size_message(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient
) -> None:
    api = catch_all(respx_mock)
    async with make_client(http_client) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.contacts.bulk_upsert(company_id="comp_1", contacts=BIG_LIST)
    assert str(info.value) == "contacts: must hold 1 to 1000 items, got 1001"
    assert api.call_count == 0
