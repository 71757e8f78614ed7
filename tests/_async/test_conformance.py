"""Wire conformance: every SDK method against the real @trpc/server v11 (json and superjson).

The server is ``tests/conformance/server.mjs`` (see its README): strict zod input schemas,
canned outputs from ``outputs.json``, ``error:CODE`` injection, and a recording of every
call and raw request. Each test runs in both transformer modes (the ``conformance`` fixture
of ``tests/conftest.py``) and checks what the server parsed, how it was sent, and what the
SDK made of the answer.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chatarmin_os import (
    APIStatusError,
    AsyncChatarminOS,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ContactInput,
    Hints,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    UnprocessableEntityError,
)
from chatarmin_os._async import _base_client as base_client_module
from chatarmin_os._exceptions import error_class_for
from chatarmin_os._procedures import PROCEDURES
from tests.conformance.reference_server import CONFORMANCE_DIR, ReferenceServer

API_KEY = "os_sk_conformance"
OUTPUTS: dict[str, Any] = json.loads((CONFORMANCE_DIR / "outputs.json").read_text("utf-8"))
TIMESTAMP_KEYS = frozenset({"createdAt", "updatedAt", "validUntil", "currentPeriodEnd"})
UTC = timezone.utc
NO_INPUT = "<no input parameter>"


# httpx loads the CA bundle for every new client (~50 ms); the tests share one SSL context.
SSL_CONTEXT = ssl.create_default_context()


def make_client(server: ReferenceServer, **kwargs: Any) -> AsyncChatarminOS:
    """A client of the server in its mode; without ``http_client`` it has its own pool."""
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("transformer", server.mode)
    kwargs.setdefault("max_retries", 0)
    return AsyncChatarminOS(base_url=server.base_url, **kwargs)


# The fixtures below yield; they are annotated `Any` so that one source serves both
# variants (scripts/gen_sync.py rewrites no iterator type names).


@pytest.fixture
async def http_client() -> Any:
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as http_client:
        yield http_client


@pytest.fixture
async def client(conformance: ReferenceServer, http_client: httpx.AsyncClient) -> Any:
    async with make_client(conformance, http_client=http_client) as client:
        yield client


class Sleeps:
    """An injected sleeper that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --- expected inputs ------------------------------------------------------------------


class Date:
    """A timestamp in an expected input: ``{"$date": iso}`` as recorded in superjson mode
    (the server parsed a ``Date``), the ISO string itself in json mode."""

    def __init__(self, iso: str) -> None:
        self.iso = iso

    def __repr__(self) -> str:
        return f"Date({self.iso!r})"


def recorded(value: Any, mode: str) -> Any:
    """An expected input as ``/__calls`` records the parsed input."""
    if isinstance(value, Date):
        return {"$date": value.iso} if mode == "superjson" else value.iso
    if isinstance(value, dict):
        return {k: recorded(v, mode) for k, v in value.items()}
    if isinstance(value, list):
        return [recorded(v, mode) for v in value]
    return value


def on_the_wire(value: Any, mode: str) -> Any:
    """An expected input as @trpc/client would send it (superjson: wrapped and annotated)."""
    dates: dict[str, list[str]] = {}

    def walk(item: Any, path: list[str]) -> Any:
        if isinstance(item, Date):
            dates[".".join(path)] = ["Date"]
            return item.iso
        if isinstance(item, dict):
            return {
                k: walk(v, [*path, k.replace("\\", "\\\\").replace(".", "\\.")])
                for k, v in item.items()
            }
        if isinstance(item, list):
            return [walk(v, [*path, str(i)]) for i, v in enumerate(item)]
        return item

    plain = walk(value, [])
    if mode == "json":
        return plain
    wrapped: dict[str, Any] = {"json": plain}
    if dates:
        wrapped["meta"] = {"values": dates, "v": 1}
    return wrapped


def sent_input(request: dict[str, Any]) -> Any:
    """The JSON a recorded raw request carried (query string for GET, body for POST)."""
    if request["method"] == "GET":
        values = parse_qs(urlsplit(request["url"]).query).get("input")
        return NO_INPUT if values is None else json.loads(values[0])
    return json.loads(request["body"])


def assert_one_call(
    server: ReferenceServer,
    path: str,
    kind: str,
    expected_input: Any,
    *,
    wire: Any = None,
) -> dict[str, Any]:
    """The server saw exactly one HTTP request, one call of ``path``, with this input."""
    calls = server.calls()
    assert [(call["path"], call["type"]) for call in calls] == [(path, kind)]
    call = calls[0]
    assert call["input"] == recorded(expected_input, server.mode)

    request = call["request"]
    assert server.requests() == [request]
    assert urlsplit(request["url"]).path == f"/api/v1/{path}"
    assert request["authorization"] == f"Bearer {API_KEY}"
    if kind == "query":
        assert request["method"] == "GET"
        assert request["contentType"] is None
        assert request["body"] is None
    else:
        assert request["method"] == "POST"
        assert request["contentType"] == "application/json"
        assert urlsplit(request["url"]).query == ""
    expected_wire = on_the_wire(expected_input, server.mode) if wire is None else wire
    assert sent_input(request) == expected_wire
    return call


# --- expected outputs -----------------------------------------------------------------


def _as_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed


def normalise(value: Any, key: str | None = None) -> Any:
    """JSON with its timestamps (ISO strings, in any format) turned into aware datetimes."""
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if key in TIMESTAMP_KEYS and isinstance(value, str):
        return _as_datetime(value)
    return value


def assert_output(result: Any, path: str) -> None:
    """The parsed result holds exactly the canned output of ``path``, extras included."""
    expected = OUTPUTS[path]
    items = result if isinstance(result, list) else [result]
    expected_items = expected if isinstance(expected, list) else [expected]
    assert isinstance(result, list) == isinstance(expected, list)
    assert len(items) == len(expected_items)
    for item, want in zip(items, expected_items, strict=True):
        # As JSON (datetimes dump as e.g. "2024-01-15T10:30:00Z": compared as datetimes) ...
        assert normalise(item.model_dump(by_alias=True, mode="json")) == normalise(want)
        # ... and as Python objects: every timestamp was parsed to an aware datetime.
        assert item.model_dump(by_alias=True) == normalise(want)
        # The field the server added beyond the contract stays readable.
        assert item.model_extra == {"serverExtra": "x"}
        assert item.serverExtra == "x"


# --- every method ---------------------------------------------------------------------

Call = Callable[[AsyncChatarminOS], Any]

ISO = "2024-01-15T10:30:00.000Z"
ISO_OFFSET = "2024-01-15T11:30:00+01:00"  # the same instant
CET = timezone(timedelta(hours=1))

CASES = [
    # onboard
    pytest.param(
        "onboard",
        "mutation",
        lambda c: c.onboard(external_org_id="org_123", label="Production"),
        {"externalOrgId": "org_123", "label": "Production"},
        id="onboard-minimal",
    ),
    pytest.param(
        "onboard",
        "mutation",
        lambda c: c.onboard(
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
        {
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
        id="onboard-every-argument",
    ),
    # companies
    pytest.param(
        "companies.getByProductLink",
        "query",
        lambda c: c.companies.get_by_product_link(external_org_id="org_123"),
        {"externalOrgId": "org_123"},
        id="companies.get_by_product_link-linked",
    ),
    pytest.param(
        "companies.create",
        "mutation",
        lambda c: c.companies.create(name="Globex GmbH"),
        {"name": "Globex GmbH"},
        id="companies.create-minimal",
    ),
    pytest.param(
        "companies.create",
        "mutation",
        lambda c: c.companies.create(
            name="Globex GmbH",
            domain="globex.example",
            external_org_id="org_124",
            label="Production",
            contact_email="jane@acme.example",
            contact_name="Hank Scorpio",
            created_at=ISO_OFFSET,
        ),
        {
            "name": "Globex GmbH",
            "domain": "globex.example",
            "externalOrgId": "org_124",
            "label": "Production",
            "contactEmail": "jane@acme.example",
            "contactName": "Hank Scorpio",
            "createdAt": Date(ISO),
        },
        id="companies.create-every-argument-offset-string",
    ),
    pytest.param(
        "companies.create",
        "mutation",
        lambda c: c.companies.create(name="Müller & Söhne GmbH ✓ 🚀", label="a+b c/d?e"),
        {"name": "Müller & Söhne GmbH ✓ 🚀", "label": "a+b c/d?e"},
        id="companies.create-non-ascii",
    ),
    pytest.param(
        "companies.update",
        "mutation",
        lambda c: c.companies.update(company_id="comp_123"),
        {"companyId": "comp_123"},
        id="companies.update-minimal",
    ),
    pytest.param(
        "companies.update",
        "mutation",
        lambda c: c.companies.update(
            company_id="comp_123",
            name="Acme Corporation",
            domain="acme.example",
            created_at=datetime(2023, 12, 1, 10, 0, 0, 123456, tzinfo=CET),
        ),
        {
            "companyId": "comp_123",
            "name": "Acme Corporation",
            "domain": "acme.example",
            "createdAt": Date("2023-12-01T09:00:00.123Z"),
        },
        id="companies.update-every-argument-aware-datetime",
    ),
    pytest.param(
        "companies.smartLink",
        "mutation",
        lambda c: c.companies.smart_link(external_org_id="org_123", label="Production"),
        {"externalOrgId": "org_123", "label": "Production"},
        id="companies.smart_link-minimal",
    ),
    pytest.param(
        "companies.smartLink",
        "mutation",
        lambda c: c.companies.smart_link(
            external_org_id="org_123",
            label="Production",
            hints=Hints(company_name="Acme", domain="acme.example", emails=["jane@acme.example"]),
            min_confidence=0.9,
        ),
        {
            "externalOrgId": "org_123",
            "label": "Production",
            "hints": {
                "companyName": "Acme",
                "domain": "acme.example",
                "emails": ["jane@acme.example"],
            },
            "minConfidence": 0.9,
        },
        id="companies.smart_link-every-argument",
    ),
    pytest.param(
        "companies.smartLink",
        "mutation",
        lambda c: c.companies.smart_link(
            external_org_id="org_123",
            label="Production",
            hints={"company_name": None, "domain": "acme.example", "emails": None},
        ),
        {"externalOrgId": "org_123", "label": "Production", "hints": {"domain": "acme.example"}},
        id="companies.smart_link-hints-with-none",
    ),
    # contacts
    pytest.param(
        "contacts.create",
        "mutation",
        lambda c: c.contacts.create(company_id="comp_123", email="jane@acme.example"),
        {"companyId": "comp_123", "email": "jane@acme.example"},
        id="contacts.create-minimal",
    ),
    pytest.param(
        "contacts.create",
        "mutation",
        lambda c: c.contacts.create(
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
        {
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
        id="contacts.create-every-argument",
    ),
    pytest.param(
        "contacts.bulkUpsert",
        "mutation",
        lambda c: c.contacts.bulk_upsert(
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
        {
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
        id="contacts.bulk_upsert-dicts-and-models",
    ),
    pytest.param(
        "contacts.bulkUpsert",
        "mutation",
        lambda c: c.contacts.bulk_upsert(
            company_id="comp_123",
            contacts=[
                {"email": "jane@acme.example", "name": None, "is_primary": None, "metadata": None},
                ContactInput(email="jane@acme.example", role=None, avatar_url=None),
            ],
        ),
        {
            "companyId": "comp_123",
            "contacts": [{"email": "jane@acme.example"}, {"email": "jane@acme.example"}],
        },
        id="contacts.bulk_upsert-none-fields",
    ),
    pytest.param(
        "contacts.list",
        "query",
        lambda c: c.contacts.list("comp_123"),
        {"companyId": "comp_123"},
        id="contacts.list",
    ),
    pytest.param(
        "contacts.list",
        "query",
        lambda c: c.contacts.list("comp_123", primary_only=True),
        {"companyId": "comp_123", "primaryOnly": True},
        id="contacts.list-primary-only",
    ),
    # features
    pytest.param(
        "features.check",
        "query",
        lambda c: c.features.check(company_id="comp_123", feature_code="ai_credit"),
        {"companyId": "comp_123", "featureCode": "ai_credit"},
        id="features.check",
    ),
    pytest.param(
        "features.check",
        "query",
        # Characters a query string must percent-encode: `+` would arrive as a space.
        lambda c: c.features.check(company_id="comp 1+2/é&x=y?#%", feature_code="ai_credit"),
        {"companyId": "comp 1+2/é&x=y?#%", "featureCode": "ai_credit"},
        id="features.check-characters-to-encode",
    ),
    pytest.param(
        "features.listAccess",
        "query",
        lambda c: c.features.list_access("comp_123"),
        {"companyId": "comp_123"},
        id="features.list_access",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(company_id="comp_123", feature_code="ai_credit"),
        {"companyId": "comp_123", "featureCode": "ai_credit"},
        id="features.set_access-minimal",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="ai_credit",
            is_enabled=True,
            quantity_limit=None,
            included_quantity=None,
            source="trial",
            valid_until=None,
        ),
        {
            "companyId": "comp_123",
            "featureCode": "ai_credit",
            "isEnabled": True,
            "quantityLimit": None,
            "includedQuantity": None,
            "source": "trial",
            "validUntil": None,
        },
        id="features.set_access-nulls",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(
            external_org_id="org_123",
            feature_code="ai_credit",
            is_enabled=False,
            quantity_limit=500,
            included_quantity=100,
            config={"maxTokens": 4096, "snake_key": "premium", "nested": {"innerKey": None}},
            source="api",
            valid_until=datetime(2025, 6, 30, tzinfo=UTC),
        ),
        {
            "externalOrgId": "org_123",
            "featureCode": "ai_credit",
            "isEnabled": False,
            "quantityLimit": 500,
            "includedQuantity": 100,
            "config": {"maxTokens": 4096, "snake_key": "premium", "nested": {"innerKey": None}},
            "source": "api",
            "validUntil": Date("2025-06-30T00:00:00.000Z"),
        },
        id="features.set_access-by-external-org-id-datetime",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="sso",
            quantity_limit=0,
            included_quantity=0,
            source="subscription",
            valid_until=ISO_OFFSET,
        ),
        {
            "companyId": "comp_123",
            "featureCode": "sso",
            "quantityLimit": 0,
            "includedQuantity": 0,
            "source": "subscription",
            "validUntil": Date(ISO),
        },
        id="features.set_access-offset-string-and-zero-limits",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(
            company_id="comp_123", feature_code="sso", source="manual", valid_until=ISO
        ),
        {
            "companyId": "comp_123",
            "featureCode": "sso",
            "source": "manual",
            "validUntil": Date(ISO),
        },
        id="features.set_access-iso-string",
    ),
    pytest.param(
        "features.setAccess",
        "mutation",
        lambda c: c.features.set_access(
            company_id="comp_123",
            feature_code="sso",
            valid_until="2024-01-15T05:30:00.123456789-05:00",
        ),
        {
            "companyId": "comp_123",
            "featureCode": "sso",
            "validUntil": Date("2024-01-15T10:30:00.123Z"),
        },
        id="features.set_access-negative-offset-nanoseconds",
    ),
    pytest.param(
        "features.getAccessByExternalOrgId",
        "query",
        lambda c: c.features.get_access_by_external_org_id("org_123"),
        {"externalOrgId": "org_123"},
        id="features.get_access_by_external_org_id",
    ),
    pytest.param(
        "features.checkByExternalOrgId",
        "query",
        lambda c: c.features.check_by_external_org_id("org_123", "sso"),
        {"externalOrgId": "org_123", "featureCode": "sso"},
        id="features.check_by_external_org_id",
    ),
    # billing
    pytest.param(
        "billing.trackUsage",
        "mutation",
        lambda c: c.billing.track_usage(
            company_id="comp_123",
            feature_code="ai_credit",
            quantity=10,
            idempotency_key="request_42",
            metadata={"model": "gpt-4", "maxTokens": 1500, "request_id": "r1"},
        ),
        {
            "companyId": "comp_123",
            "featureCode": "ai_credit",
            "quantity": 10,
            "idempotencyKey": "request_42",
            "metadata": {"model": "gpt-4", "maxTokens": 1500, "request_id": "r1"},
        },
        id="billing.track_usage-with-key-and-metadata",
    ),
    pytest.param(
        "billing.claimCheckout",
        "mutation",
        lambda c: c.billing.claim_checkout(
            company_id="comp_123", checkout_session_id="cs_test_123"
        ),
        {"companyId": "comp_123", "checkoutSessionId": "cs_test_123"},
        id="billing.claim_checkout",
    ),
    pytest.param(
        "billing.linkSubscription",
        "mutation",
        lambda c: c.billing.link_subscription(
            company_id="comp_123", stripe_subscription_id="sub_1OaBcDeFgHiJkL"
        ),
        {"companyId": "comp_123", "stripeSubscriptionId": "sub_1OaBcDeFgHiJkL"},
        id="billing.link_subscription-minimal",
    ),
    pytest.param(
        "billing.linkSubscription",
        "mutation",
        lambda c: c.billing.link_subscription(
            company_id="comp_123",
            stripe_subscription_id="sub_1OaBcDeFgHiJkL",
            stripe_customer_id="cus_123",
            tier_code="pro",
            display_name="Pro (monthly)",
        ),
        {
            "companyId": "comp_123",
            "stripeSubscriptionId": "sub_1OaBcDeFgHiJkL",
            "stripeCustomerId": "cus_123",
            "tierCode": "pro",
            "displayName": "Pro (monthly)",
        },
        id="billing.link_subscription-every-argument",
    ),
    pytest.param(
        "billing.getStatus",
        "query",
        lambda c: c.billing.get_status("comp_123"),
        {"companyId": "comp_123"},
        id="billing.get_status",
    ),
    # tiers and subscriptions
    pytest.param(
        "tiers.get",
        "query",
        lambda c: c.tiers.get("pro"),
        {"tierCode": "pro"},
        id="tiers.get",
    ),
    pytest.param(
        "tiers.applyTier",
        "mutation",
        lambda c: c.tiers.apply("pro", company_id="comp_123"),
        {"tierCode": "pro", "companyId": "comp_123"},
        id="tiers.apply-minimal",
    ),
    pytest.param(
        "tiers.applyTier",
        "mutation",
        lambda c: c.tiers.apply(
            "pro",
            company_id="comp_123",
            features={"ai_credit": {"included_quantity": 100}, "seats": {"max_quantity": 10}},
        ),
        {
            "tierCode": "pro",
            "companyId": "comp_123",
            "features": {
                "ai_credit": {"included_quantity": 100},
                "seats": {"max_quantity": 10},
            },
        },
        id="tiers.apply-overrides",
    ),
    pytest.param(
        "tiers.applyTier",
        "mutation",
        lambda c: c.subscriptions.create("pro", company_id="comp_123"),
        {"tierCode": "pro", "companyId": "comp_123"},
        id="subscriptions.create-minimal",
    ),
    pytest.param(
        "tiers.applyTier",
        "mutation",
        lambda c: c.subscriptions.create(
            "pro",
            company_id="comp_123",
            features={"ai_credit": {"included_quantity": 100, "modelTier": "premium"}},
        ),
        {
            "tierCode": "pro",
            "companyId": "comp_123",
            "features": {"ai_credit": {"included_quantity": 100, "modelTier": "premium"}},
        },
        id="subscriptions.create-overrides",
    ),
    # links
    pytest.param(
        "links.create",
        "mutation",
        lambda c: c.links.create(company_id="comp_123", external_org_id="org_123"),
        {"companyId": "comp_123", "externalOrgId": "org_123"},
        id="links.create-minimal",
    ),
    pytest.param(
        "links.create",
        "mutation",
        lambda c: c.links.create(
            company_id="comp_123",
            external_org_id="org_123",
            label="Production",
            external_user_id="user_42",
        ),
        {
            "companyId": "comp_123",
            "externalOrgId": "org_123",
            "label": "Production",
            "externalUserId": "user_42",
        },
        id="links.create-every-argument",
    ),
    pytest.param(
        "links.reset",
        "mutation",
        lambda c: c.links.reset(),
        {},
        id="links.reset-no-flags",
    ),
    pytest.param(
        "links.reset",
        "mutation",
        lambda c: c.links.reset(delete_contacts=True),
        {"deleteContacts": True},
        id="links.reset-delete-contacts",
    ),
    pytest.param(
        "links.reset",
        "mutation",
        lambda c: c.links.reset(delete_contacts=True, reset_mrr=True),
        {"deleteContacts": True, "resetMrr": True},
        id="links.reset-both-flags",
    ),
]


@pytest.mark.parametrize(("path", "kind", "call", "expected_input"), CASES)
async def test_method(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
    path: str,
    kind: str,
    call: Call,
    expected_input: Any,
) -> None:
    result = await call(client)
    assert_one_call(conformance, path, kind, expected_input)
    assert_output(result, path)


async def test_get_by_product_link_of_an_unlinked_org_is_none(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
) -> None:
    company = await client.companies.get_by_product_link(external_org_id="org_unlinked")
    assert company is None
    assert_one_call(
        conformance, "companies.getByProductLink", "query", {"externalOrgId": "org_unlinked"}
    )


async def test_tiers_list_sends_no_input(
    conformance: ReferenceServer, client: AsyncChatarminOS
) -> None:
    tiers = await client.tiers.list()
    # As @trpc/client's httpLink: no `input` in json mode, the encoded `undefined` in superjson.
    wire = (
        NO_INPUT
        if conformance.mode == "json"
        else {"json": None, "meta": {"values": ["undefined"], "v": 1}}
    )
    assert_one_call(conformance, "tiers.list", "query", None, wire=wire)
    assert_output(tiers, "tiers.list")


@pytest.mark.parametrize("no_key", [{}, {"idempotency_key": None}], ids=["omitted", "None"])
async def test_track_usage_without_a_key_sends_a_uuid4(
    conformance: ReferenceServer, client: AsyncChatarminOS, no_key: dict[str, Any]
) -> None:
    usage = await client.billing.track_usage(
        company_id="comp_123", feature_code="ai_credit", quantity=1, **no_key
    )
    key = conformance.calls()[0]["input"]["idempotencyKey"]
    assert uuid.UUID(key).version == 4
    assert str(uuid.UUID(key)) == key
    assert_one_call(
        conformance,
        "billing.trackUsage",
        "mutation",
        {"companyId": "comp_123", "featureCode": "ai_credit", "quantity": 1, "idempotencyKey": key},
    )
    assert_output(usage, "billing.trackUsage")


async def test_parsed_values(conformance: ReferenceServer, client: AsyncChatarminOS) -> None:
    """A few results read as attributes: snake_case names, aware datetimes, nested models."""
    company = await client.companies.create(name="Globex GmbH")
    status = await client.billing.get_status("comp_123")
    tier = await client.tiers.get("pro")
    access = await client.features.list_access("comp_123")
    assert company.created_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert company.created_at.utcoffset() == timedelta(0)
    assert company.domain is None
    assert status.active_subscriptions[0].current_period_end == datetime(
        2024, 2, 15, 10, 30, tzinfo=UTC
    )
    assert status.active_subscriptions[0].tier is not None
    assert status.active_subscriptions[0].tier.code == "pro"
    assert status.active_subscriptions[1].tier is None
    assert status.active_subscriptions[1].current_period_end is None
    assert tier.base_fee is not None
    assert tier.base_fee.stripe.unit_amount == 4900
    assert tier.features[0].config_values == {"included_quantity": 1000, "max_quantity": 5000}
    assert access[0].valid_until == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert access[1].valid_until is None
    assert access[1].quantity_limit is None


# Every optional argument whose `None` means "not given": it must be left out of the input
# (the contract sends `null` only for quantity_limit, included_quantity and valid_until).
NoneCall = Callable[[AsyncChatarminOS, dict[str, Any]], Any]
_NONE_TABLE: list[tuple[str, str, str, NoneCall, dict[str, Any], list[str]]] = [
    (
        "onboard",
        "onboard",
        "mutation",
        lambda c, kw: c.onboard(external_org_id="org_123", label="Production", **kw),
        {"externalOrgId": "org_123", "label": "Production"},
        [
            "hints",
            "tier_code",
            "checkout_session_id",
            "stripe_subscription_id",
            "stripe_customer_id",
            "contact_email",
            "contact_name",
            "created_at",
        ],
    ),
    (
        "companies.create",
        "companies.create",
        "mutation",
        lambda c, kw: c.companies.create(name="Globex GmbH", **kw),
        {"name": "Globex GmbH"},
        ["domain", "external_org_id", "label", "contact_email", "contact_name", "created_at"],
    ),
    (
        "companies.update",
        "companies.update",
        "mutation",
        lambda c, kw: c.companies.update(company_id="comp_123", **kw),
        {"companyId": "comp_123"},
        ["name", "domain", "created_at"],
    ),
    (
        "companies.smart_link",
        "companies.smartLink",
        "mutation",
        lambda c, kw: c.companies.smart_link(external_org_id="org_123", label="Production", **kw),
        {"externalOrgId": "org_123", "label": "Production"},
        ["hints", "min_confidence"],
    ),
    (
        "contacts.create",
        "contacts.create",
        "mutation",
        lambda c, kw: c.contacts.create(company_id="comp_123", email="jane@acme.example", **kw),
        {"companyId": "comp_123", "email": "jane@acme.example"},
        ["name", "role", "is_primary", "avatar_url", "metadata"],
    ),
    (
        "contacts.list",
        "contacts.list",
        "query",
        lambda c, kw: c.contacts.list("comp_123", **kw),
        {"companyId": "comp_123"},
        ["primary_only"],
    ),
    (
        "features.set_access",
        "features.setAccess",
        "mutation",
        lambda c, kw: c.features.set_access(company_id="comp_123", feature_code="sso", **kw),
        {"companyId": "comp_123", "featureCode": "sso"},
        ["external_org_id", "is_enabled", "config", "source"],
    ),
    (
        "billing.track_usage",
        "billing.trackUsage",
        "mutation",
        lambda c, kw: c.billing.track_usage(
            company_id="comp_123", feature_code="ai_credit", quantity=1, idempotency_key="k", **kw
        ),
        {"companyId": "comp_123", "featureCode": "ai_credit", "quantity": 1, "idempotencyKey": "k"},
        ["metadata"],
    ),
    (
        "billing.link_subscription",
        "billing.linkSubscription",
        "mutation",
        lambda c, kw: c.billing.link_subscription(
            company_id="comp_123", stripe_subscription_id="sub_1", **kw
        ),
        {"companyId": "comp_123", "stripeSubscriptionId": "sub_1"},
        ["stripe_customer_id", "tier_code", "display_name"],
    ),
    (
        "tiers.apply",
        "tiers.applyTier",
        "mutation",
        lambda c, kw: c.tiers.apply("pro", company_id="comp_123", **kw),
        {"tierCode": "pro", "companyId": "comp_123"},
        ["features"],
    ),
    (
        "subscriptions.create",
        "tiers.applyTier",
        "mutation",
        lambda c, kw: c.subscriptions.create("pro", company_id="comp_123", **kw),
        {"tierCode": "pro", "companyId": "comp_123"},
        ["features"],
    ),
    (
        "links.create",
        "links.create",
        "mutation",
        lambda c, kw: c.links.create(company_id="comp_123", external_org_id="org_123", **kw),
        {"companyId": "comp_123", "externalOrgId": "org_123"},
        ["label", "external_user_id"],
    ),
    (
        "links.reset",
        "links.reset",
        "mutation",
        lambda c, kw: c.links.reset(**kw),
        {},
        ["delete_contacts", "reset_mrr"],
    ),
]
NONE_CASES = [
    pytest.param(path, kind, call, expected, argument, id=f"{method}-{argument}")
    for method, path, kind, call, expected, arguments in _NONE_TABLE
    for argument in arguments
]


@pytest.mark.parametrize(("path", "kind", "call", "expected_input", "argument"), NONE_CASES)
async def test_none_is_the_same_as_leaving_an_argument_out(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
    path: str,
    kind: str,
    call: NoneCall,
    expected_input: dict[str, Any],
    argument: str,
) -> None:
    result = await call(client, {argument: None})
    assert_one_call(conformance, path, kind, expected_input)
    assert_output(result, path)


@pytest.mark.parametrize(
    ("created_at", "iso"),
    [
        pytest.param(
            datetime(999, 1, 15, 10, 30, tzinfo=UTC), "0999-01-15T10:30:00.000Z", id="datetime"
        ),
        pytest.param("0999-01-15T11:30:00+01:00", "0999-01-15T10:30:00.000Z", id="iso-string"),
        pytest.param(
            datetime.min.replace(tzinfo=UTC), "0001-01-01T00:00:00.000Z", id="datetime.min"
        ),
    ],
)
async def test_timestamps_before_year_1000_keep_four_year_digits(
    conformance: ReferenceServer, client: AsyncChatarminOS, created_at: Any, iso: str
) -> None:
    """As JavaScript's toISOString writes them; zod and superjson refuse `999-01-15T...`."""
    company = await client.companies.create(name="Globex GmbH", created_at=created_at)
    assert_one_call(
        conformance, "companies.create", "mutation", {"name": "Globex GmbH", "createdAt": Date(iso)}
    )
    assert_output(company, "companies.create")


# --- errors ---------------------------------------------------------------------------

# The contract's table: tRPC code -> (JSON-RPC code, HTTP status).
TRPC_ERRORS: dict[str, tuple[int, int]] = {
    "PARSE_ERROR": (-32700, 400),
    "BAD_REQUEST": (-32600, 400),
    "UNAUTHORIZED": (-32001, 401),
    "PAYMENT_REQUIRED": (-32002, 402),
    "FORBIDDEN": (-32003, 403),
    "NOT_FOUND": (-32004, 404),
    "METHOD_NOT_SUPPORTED": (-32005, 405),
    "TIMEOUT": (-32008, 408),
    "CONFLICT": (-32009, 409),
    "PRECONDITION_FAILED": (-32012, 412),
    "PAYLOAD_TOO_LARGE": (-32013, 413),
    "UNSUPPORTED_MEDIA_TYPE": (-32015, 415),
    "UNPROCESSABLE_CONTENT": (-32022, 422),
    "PRECONDITION_REQUIRED": (-32028, 428),
    "TOO_MANY_REQUESTS": (-32029, 429),
    "CLIENT_CLOSED_REQUEST": (-32099, 499),
    "INTERNAL_SERVER_ERROR": (-32603, 500),
    "NOT_IMPLEMENTED": (-32603, 501),
    "BAD_GATEWAY": (-32603, 502),
    "SERVICE_UNAVAILABLE": (-32603, 503),
    "GATEWAY_TIMEOUT": (-32603, 504),
}

# The SDK's classes; codes without a class of their own are plain APIStatusError.
ERROR_CLASSES: dict[str, type[APIStatusError]] = {
    "PARSE_ERROR": BadRequestError,
    "BAD_REQUEST": BadRequestError,
    "UNAUTHORIZED": AuthenticationError,
    "PAYMENT_REQUIRED": APIStatusError,
    "FORBIDDEN": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "METHOD_NOT_SUPPORTED": APIStatusError,
    "TIMEOUT": APIStatusError,
    "CONFLICT": ConflictError,
    "PRECONDITION_FAILED": PreconditionFailedError,
    "PAYLOAD_TOO_LARGE": APIStatusError,
    "UNSUPPORTED_MEDIA_TYPE": APIStatusError,
    "UNPROCESSABLE_CONTENT": UnprocessableEntityError,
    "PRECONDITION_REQUIRED": APIStatusError,
    "TOO_MANY_REQUESTS": RateLimitError,
    "CLIENT_CLOSED_REQUEST": APIStatusError,
    "INTERNAL_SERVER_ERROR": InternalServerError,
    "NOT_IMPLEMENTED": InternalServerError,
    "BAD_GATEWAY": InternalServerError,
    "SERVICE_UNAVAILABLE": InternalServerError,
    "GATEWAY_TIMEOUT": InternalServerError,
}


def assert_trpc_error(error: APIStatusError, code: str, path: str, message: str) -> None:
    number, status = TRPC_ERRORS[code]
    assert type(error) is ERROR_CLASSES[code]
    assert type(error) is error_class_for(status, code)
    assert error.code == code
    assert error.status_code == status
    assert error.response.status_code == status
    assert error.message == message
    assert error.path == path
    assert error.body is not None
    assert error.body["code"] == number
    assert error.body["data"]["code"] == code
    assert error.body["data"]["httpStatus"] == status
    assert str(error) == f"{status} {code} on {path}: {message}"


@pytest.mark.parametrize("code", list(TRPC_ERRORS))
async def test_injected_error_on_a_query(
    conformance: ReferenceServer, client: AsyncChatarminOS, code: str
) -> None:
    with pytest.raises(APIStatusError) as info:
        await client.features.check(company_id=f"error:{code}", feature_code="ai_credit")
    assert_trpc_error(info.value, code, "features.check", f"injected {code}")
    assert_one_call(
        conformance,
        "features.check",
        "query",
        {"companyId": f"error:{code}", "featureCode": "ai_credit"},
    )


@pytest.mark.parametrize("code", list(TRPC_ERRORS))
async def test_injected_error_on_a_mutation(
    conformance: ReferenceServer, client: AsyncChatarminOS, code: str
) -> None:
    with pytest.raises(APIStatusError) as info:
        await client.billing.track_usage(
            company_id=f"error:{code}",
            feature_code="ai_credit",
            quantity=1,
            idempotency_key="request_1",
        )
    assert_trpc_error(info.value, code, "billing.trackUsage", f"injected {code}")
    assert_one_call(
        conformance,
        "billing.trackUsage",
        "mutation",
        {
            "companyId": f"error:{code}",
            "featureCode": "ai_credit",
            "quantity": 1,
            "idempotencyKey": "request_1",
        },
    )


async def test_unknown_injected_code_is_a_bad_request(
    conformance: ReferenceServer, client: AsyncChatarminOS
) -> None:
    with pytest.raises(BadRequestError) as info:
        await client.tiers.get("error:TEAPOT")
    assert_trpc_error(info.value, "BAD_REQUEST", "tiers.get", "unknown injected error code TEAPOT")


@pytest.mark.parametrize("api_key", ["sk_live_not_an_os_key", "os_sk"])
async def test_wrong_api_key_is_an_authentication_error(
    conformance: ReferenceServer, api_key: str
) -> None:
    async with make_client(conformance, api_key=api_key) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.features.check(company_id="comp_123", feature_code="ai_credit")
        with pytest.raises(AuthenticationError) as mutation_info:
            await client.links.reset()
    assert_trpc_error(info.value, "UNAUTHORIZED", "features.check", "Missing or invalid API key")
    assert_trpc_error(
        mutation_info.value, "UNAUTHORIZED", "links.reset", "Missing or invalid API key"
    )
    assert api_key not in str(info.value)
    assert conformance.calls() == []
    requests = conformance.requests()
    assert [r["authorization"] for r in requests] == [f"Bearer {api_key}"] * 2


def validator_issues(error: APIStatusError) -> list[dict[str, Any]]:
    """The zod issues of a BAD_REQUEST from input validation (its message is their JSON)."""
    issues: list[dict[str, Any]] = json.loads(error.message)
    return issues


async def test_input_the_server_rejects_is_a_bad_request(
    conformance: ReferenceServer, client: AsyncChatarminOS
) -> None:
    with pytest.raises(BadRequestError) as info:
        await client._call("billing.trackUsage", {"bogus": 1}, dict)
    error = info.value
    assert error.code == "BAD_REQUEST"
    assert error.status_code == 400
    assert error.path == "billing.trackUsage"
    assert error.body is not None
    assert error.body["code"] == -32600
    issues = validator_issues(error)
    assert any(
        issue["code"] == "unrecognized_keys" and issue["keys"] == ["bogus"] for issue in issues
    )
    assert any(issue["path"] == ["companyId"] for issue in issues)
    assert conformance.calls() == []  # refused by the validator: no procedure ran
    [request] = conformance.requests()
    assert sent_input(request) == on_the_wire({"bogus": 1}, conformance.mode)


async def test_quantity_beyond_the_safe_integer_range_is_refused_before_sending(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
) -> None:
    """zod 4 refuses integers beyond 2**53 - 1; the SDK refuses them before sending."""
    with pytest.raises(InvalidInputError, match=r"quantity: must be at most 2\*\*53 - 1"):
        await client.billing.track_usage(
            company_id="comp_123",
            feature_code="ai_credit",
            quantity=2**53,
            idempotency_key="request_big",
        )
    assert conformance.requests() == []
    # The largest safe integer itself goes through.
    await client.billing.track_usage(
        company_id="comp_123", feature_code="ai_credit", quantity=2**53 - 1
    )
    [call] = conformance.calls()
    assert call["input"]["quantity"] == 2**53 - 1


async def test_input_refused_by_the_sdk_is_never_sent(
    conformance: ReferenceServer, client: AsyncChatarminOS
) -> None:
    with pytest.raises(InvalidInputError, match="quantity_limit"):
        await client.features.set_access(
            company_id="comp_123", feature_code="ai_credit", quantity_limit=-1
        )
    with pytest.raises(InvalidInputError, match="created_at"):
        await client.companies.create(name="Acme", created_at="2024-01-15T10:30:00")
    with pytest.raises(InvalidInputError, match="company_id"):
        await client.features.set_access(
            company_id="comp_123", external_org_id="org_123", feature_code="ai_credit"
        )
    assert conformance.requests() == []


# --- errors tRPC itself raises ---------------------------------------------------------

PROTOCOL_ERRORS = [
    pytest.param(
        "query",
        "nope.nothing",
        {"companyId": "comp_123"},
        True,
        "NOT_FOUND",
        'No procedure found on path "nope.nothing"',
        id="unknown-procedure",
    ),
    pytest.param(
        "mutation",
        "features.check",
        {"companyId": "comp_123", "featureCode": "ai_credit"},
        True,
        "METHOD_NOT_SUPPORTED",
        'Unsupported POST-request to query procedure at path "features.check"',
        id="query-sent-as-post",
    ),
    pytest.param(
        "query",
        "billing.trackUsage",
        {"companyId": "comp_123", "featureCode": "ai_credit", "quantity": 1},
        True,
        "METHOD_NOT_SUPPORTED",
        'Unsupported GET-request to mutation procedure at path "billing.trackUsage"',
        id="mutation-sent-as-get",
    ),
    pytest.param(
        "query",
        "features.check",
        None,
        False,
        "BAD_REQUEST",
        None,
        id="query-without-input",
    ),
]


@pytest.mark.parametrize(
    ("kind", "path", "payload", "has_input", "code", "message"), PROTOCOL_ERRORS
)
async def test_errors_raised_by_trpc_itself(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
    monkeypatch: pytest.MonkeyPatch,
    kind: Any,
    path: str,
    payload: Any,
    has_input: bool,
    code: str,
    message: str | None,
) -> None:
    # Send what the SDK never would: another kind, an unknown path, no input.
    monkeypatch.setitem(PROCEDURES, path, kind)
    if not has_input:
        monkeypatch.setattr(base_client_module, "NO_INPUT", frozenset({path}))
    with pytest.raises(APIStatusError) as info:
        await client._call(path, payload, dict)
    if message is None:
        [issue] = validator_issues(info.value)
        assert issue["message"] == "Invalid input: expected object, received undefined"
        message = info.value.message
    assert_trpc_error(info.value, code, path, message)
    assert conformance.calls() == []
    assert len(conformance.requests()) == 1


async def test_a_transformer_the_server_does_not_use_is_a_bad_request(
    conformance: ReferenceServer, http_client: httpx.AsyncClient
) -> None:
    other = "json" if conformance.mode == "superjson" else "superjson"
    async with make_client(conformance, transformer=other, http_client=http_client) as client:
        with pytest.raises(BadRequestError) as info:
            await client.links.reset(reset_mrr=True)
    assert info.value.code == "BAD_REQUEST"
    assert info.value.path == "links.reset"
    assert validator_issues(info.value)
    assert conformance.calls() == []


# --- retries against the real server ----------------------------------------------------


async def test_a_failing_query_is_retried(
    conformance: ReferenceServer, http_client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    async with make_client(
        conformance, max_retries=2, sleep=sleeps, http_client=http_client
    ) as client:
        with pytest.raises(InternalServerError):
            await client.features.check(
                company_id="error:SERVICE_UNAVAILABLE", feature_code="ai_credit"
            )
    calls = conformance.calls()
    assert [call["path"] for call in calls] == ["features.check"] * 3
    assert len({call["request"]["url"] for call in calls}) == 1
    assert len(sleeps.calls) == 2


async def test_a_retried_track_usage_sends_the_same_idempotency_key(
    conformance: ReferenceServer, http_client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    async with make_client(
        conformance, max_retries=2, sleep=sleeps, http_client=http_client
    ) as client:
        with pytest.raises(InternalServerError):
            await client.billing.track_usage(
                company_id="error:BAD_GATEWAY", feature_code="ai_credit", quantity=3
            )
    calls = conformance.calls()
    assert [call["path"] for call in calls] == ["billing.trackUsage"] * 3
    keys = {call["input"]["idempotencyKey"] for call in calls}
    assert len(keys) == 1
    assert uuid.UUID(keys.pop()).version == 4
    assert len({call["request"]["body"] for call in calls}) == 1
    assert len(sleeps.calls) == 2


async def test_a_mutation_without_idempotency_key_is_not_retried(
    conformance: ReferenceServer, http_client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    async with make_client(
        conformance, max_retries=2, sleep=sleeps, http_client=http_client
    ) as client:
        with pytest.raises(InternalServerError):
            await client.companies.create(name="Acme", external_org_id="error:SERVICE_UNAVAILABLE")
    assert [call["path"] for call in conformance.calls()] == ["companies.create"]
    assert sleeps.calls == []
