"""Wire conformance: every SDK method against the real @trpc/server v11 (json and superjson).

The server is ``tests/conformance/server.mjs`` (see its README): strict zod input schemas,
canned outputs (set per test, else ``outputs.json``), ``error:CODE`` injection, and a
recording of every call and raw request. Each test runs in both transformer modes (the
``conformance`` fixture of ``tests/conftest.py``) and checks what the server parsed, how it
was sent, and what the SDK made of the answer. The per-method cases are those of
``tests/support/cases.py``, which the respx wire tests read too.
"""

from __future__ import annotations

import json
import ssl
import uuid
from datetime import datetime, timezone
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
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    UnprocessableEntityError,
)
from chatarmin_os._client import core as base_client_module
from chatarmin_os._exceptions import error_class_for
from chatarmin_os._procedures import PROCEDURES
from tests.support.cases import (
    CASES,
    METHODS,
    NO_INPUT,
    PATHS,
    Case,
    Date,
    on_the_wire,
    plain,
    recorded,
)
from tests.support.helpers import Sleeps
from tests.support.reference_server import CONFORMANCE_DIR, ReferenceServer

API_KEY = "os_sk_conformance"
OUTPUTS: dict[str, Any] = json.loads((CONFORMANCE_DIR / "outputs.json").read_text("utf-8"))
TIMESTAMP_KEYS = frozenset({"createdAt", "updatedAt", "validUntil", "currentPeriodEnd"})
UTC = timezone.utc


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


# --- expected inputs ------------------------------------------------------------------


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
    """The parsed result holds exactly ``outputs.json``'s output of ``path``, extras included."""
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


# --- every method: the shared case table ---------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_method(conformance: ReferenceServer, client: AsyncChatarminOS, case: Case) -> None:
    conformance.set_output(case.path, plain(case.output))
    result = await case.call(client)
    if case.input == NO_INPUT:
        # As @trpc/client's httpLink: no `input` in json mode, the encoded `undefined` in superjson.
        wire = (
            NO_INPUT
            if conformance.mode == "json"
            else {"json": None, "meta": {"values": ["undefined"], "v": 1}}
        )
        assert_one_call(conformance, case.path, case.kind, None, wire=wire)
    else:
        assert_one_call(conformance, case.path, case.kind, case.input)
    assert result == case.expected


def without_generated_key(name: str, sent: dict[str, Any]) -> dict[str, Any]:
    """``track_usage`` always sends an idempotency key: check it is a UUIDv7, then drop it."""
    if name == "billing.track_usage":
        key = sent.pop("idempotencyKey")
        assert str(uuid.UUID(key)) == key and uuid.UUID(key).version == 7
    return sent


def assert_sent(conformance: ReferenceServer, name: str, expected: dict[str, Any]) -> None:
    """The router parsed exactly ``expected`` (plus a generated key) from one request."""
    [call] = conformance.calls()
    assert call["path"] == PATHS[name]
    assert without_generated_key(name, dict(call["input"])) == expected
    request = call["request"]
    sent = sent_input(request)
    wire = sent["json"] if conformance.mode == "superjson" else sent
    assert without_generated_key(name, dict(wire)) == expected


@pytest.mark.parametrize("name", list(METHODS))
async def test_only_given_arguments_are_sent(
    conformance: ReferenceServer, client: AsyncChatarminOS, name: str
) -> None:
    method = METHODS[name]
    await method.get(client)(**method.required)
    assert_sent(conformance, name, method.minimal_wire)


@pytest.mark.parametrize(
    ("name", "argument"),
    [(name, argument) for name, method in METHODS.items() for argument in method.optional],
)
async def test_none_is_the_same_as_leaving_an_argument_out(
    conformance: ReferenceServer, client: AsyncChatarminOS, name: str, argument: str
) -> None:
    method = METHODS[name]
    await method.get(client)(**method.required, **{argument: None})
    assert_sent(conformance, name, method.minimal_wire)


async def test_get_by_product_link_of_an_unlinked_org_is_none(
    conformance: ReferenceServer,
    client: AsyncChatarminOS,
) -> None:
    company = await client.companies.get_by_product_link(external_org_id="org_unlinked")
    assert company is None
    assert_one_call(
        conformance, "companies.getByProductLink", "query", {"externalOrgId": "org_unlinked"}
    )


@pytest.mark.parametrize("no_key", [{}, {"idempotency_key": None}], ids=["omitted", "None"])
async def test_track_usage_without_a_key_sends_a_uuid7(
    conformance: ReferenceServer, client: AsyncChatarminOS, no_key: dict[str, Any]
) -> None:
    usage = await client.billing.track_usage(
        company_id="comp_123", feature_code="ai_credit", quantity=1, **no_key
    )
    key = conformance.calls()[0]["input"]["idempotencyKey"]
    assert uuid.UUID(key).version == 7
    assert str(uuid.UUID(key)) == key
    assert_one_call(
        conformance,
        "billing.trackUsage",
        "mutation",
        {"companyId": "comp_123", "featureCode": "ai_credit", "quantity": 1, "idempotencyKey": key},
    )
    assert_output(usage, "billing.trackUsage")


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
    assert uuid.UUID(keys.pop()).version == 7
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
