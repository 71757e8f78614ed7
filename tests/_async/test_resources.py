"""Every public method of the client: the request it sends, and how its answer is parsed.

The per-method cases (``tests/cases.py``, which the conformance tests read too) are served by
respx in both transformers. Also the input rules: camelCase field names with free-form maps
passed through untouched, omitted vs ``None``, timestamps, and arguments refused before
anything is sent.
"""

from __future__ import annotations

import math
import ssl
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pydantic
import pytest
import respx

from chatarmin_os import (
    APIResponseValidationError,
    AsyncChatarminOS,
    ChatarminOSError,
    ContactInput,
    Hints,
    InvalidInputError,
)
from tests.cases import (
    CASES,
    EST,
    EXTRA,
    IST,
    METHODS,
    NO_INPUT,
    UTC,
    Case,
    Date,
    Method,
    on_the_wire,
    plain,
)
from tests.helpers import API_KEY, BASE_URL, TRANSFORMERS, ok, raw_input, sent_input

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
    # billing.track_usage_later and flush, the usage buffer: tests/_async/test_usage_buffer.py;
    # billing.reserve, the quota ledger: tests/_async/test_reserve.py
    assert {case.id.split("-")[0] for case in CASES} == public - {
        "features.check_many",
        "billing.track_usage_later",
        "billing.reserve",
    }


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_method(
    respx_mock: respx.MockRouter, http_client: httpx.AsyncClient, transformer: str, case: Case
) -> None:
    answer = ok(case.output if transformer == "superjson" else plain(case.output), transformer)
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

    if case.input == NO_INPUT:
        if transformer == "superjson":
            assert raw_input(request) == {"json": None, "meta": {"values": ["undefined"], "v": 1}}
        else:
            assert str(request.url) == f"{BASE_URL}/{case.path}"
    else:
        if case.method == "GET":
            assert list(request.url.params) == ["input"]
        assert raw_input(request) == on_the_wire(case.input, transformer)

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
    assert raw == on_the_wire(expected, transformer)


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
    assert raw == on_the_wire(expected, transformer)


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
    assert raw == on_the_wire(expected, transformer)


# --- 3. omitted vs None ---------------------------------------------------------------


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
    """``track_usage`` always sends an idempotency key: check it is a UUIDv7, then drop it."""
    if name == "billing.track_usage":
        assert uuid.UUID(wire.pop("idempotencyKey")).version == 7
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
    assert raw == on_the_wire(expected, transformer)
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
    wire = {**method.minimal_wire, key: Date(expected)}
    assert raw_input(api.calls.last.request) == on_the_wire(wire, transformer)


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
