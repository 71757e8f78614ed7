"""The client core: wire format, errors, retries, timeouts, configuration, redaction."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest
import respx

import chatarmin_os
from chatarmin_os import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncChatarminOS,
    AuthenticationError,
    BadRequestError,
    ChatarminOSError,
    ConflictError,
    FeatureAccess,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    UnprocessableEntityError,
    UsageResult,
)
from tests.support.canned import METERED_ACCESS, METERED_USAGE
from tests.support.helpers import (
    API_KEY,
    BASE_URL,
    TRANSFORMERS,
    Sleeps,
    ok,
    raw_input,
    sent_input,
    trpc_error,
)

ACCESS = {**METERED_ACCESS, "serverAddedField": {"x": 1}}
"""The canned access, with a field the SDK does not know (kept in ``model_extra``)."""


def make_client(sleeps: Sleeps | None = None, **kwargs: Any) -> AsyncChatarminOS:
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    return AsyncChatarminOS(sleep=sleeps or Sleeps(), **kwargs)


def route(respx_mock: respx.MockRouter, method: str, path: str) -> respx.Route:
    return respx_mock.route(method=method, url__startswith=f"{BASE_URL}/{path}")


# --- the wire -------------------------------------------------------------------------


async def test_query_is_a_get_with_encode_uri_component_input(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    async with make_client() as client:
        access = await client.features.check(company_id="comp 1/é'", feature_code="ai_credit")

    request = check.calls.last.request
    assert str(request.url) == (
        f"{BASE_URL}/features.check?input="
        "%7B%22companyId%22%3A%22comp%201%2F%C3%A9'%22%2C%22featureCode%22%3A%22ai_credit%22%7D"
    )
    assert request.content == b""
    assert "content-type" not in request.headers
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"] == f"chatarmin-os-python/{chatarmin_os.__version__}"
    assert request.headers["accept"] == "application/json"
    assert access == FeatureAccess(
        feature_code="ai_credit",
        is_enabled=True,
        can_use=True,
        has_quantity=True,
        current_usage=5,
        quantity_limit=100,
        included_quantity=50,
        remaining=95,
        serverAddedField={"x": 1},
    )
    assert access.model_extra == {"serverAddedField": {"x": 1}}


async def test_query_in_superjson_mode_wraps_the_input(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS, "superjson"))
    async with make_client(transformer="superjson") as client:
        access = await client.features.check(company_id="c1", feature_code="ai_credit")
    assert raw_input(check.calls.last.request) == {
        "json": {"companyId": "c1", "featureCode": "ai_credit"}
    }
    assert access.remaining == 95


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_query_without_input(respx_mock: respx.MockRouter, transformer: str) -> None:
    tiers = route(respx_mock, "GET", "tiers.list").mock(
        return_value=ok([{"code": "free", "name": "Free", "description": None}], transformer)
    )
    async with make_client(transformer=transformer) as client:
        result = await client.tiers.list()
    url = str(tiers.calls.last.request.url)
    if transformer == "json":
        assert url == f"{BASE_URL}/tiers.list"
    else:
        assert url == (
            f"{BASE_URL}/tiers.list?input="
            "%7B%22json%22%3Anull%2C%22meta%22%3A%7B%22values%22%3A%5B%22undefined%22%5D%2C%22v%22%3A1%7D%7D"
        )
    assert [t.code for t in result] == ["free"]


async def test_mutation_is_a_json_post(respx_mock: respx.MockRouter) -> None:
    track = route(respx_mock, "POST", "billing.trackUsage").mock(return_value=ok(METERED_USAGE))
    async with make_client() as client:
        usage = await client.billing.track_usage(
            company_id="c1",
            feature_code="ai_credit",
            quantity=5,
            idempotency_key="request_42",
            metadata={"model": "gpt-4", "max_tokens": 1500},
        )
    request = track.calls.last.request
    assert str(request.url) == f"{BASE_URL}/billing.trackUsage"
    assert request.headers["content-type"] == "application/json"
    assert request.content == (
        b'{"companyId":"c1","featureCode":"ai_credit","quantity":5,'
        b'"idempotencyKey":"request_42","metadata":{"model":"gpt-4","max_tokens":1500}}'
    )
    assert usage == UsageResult(
        feature_code="ai_credit",
        current_usage=10,
        quantity_limit=100,
        included_quantity=5,
        remaining=90,
        billable_quantity=5,
        is_at_limit=False,
        duplicate=False,
    )


async def test_superjson_dates_are_annotated_both_ways(respx_mock: respx.MockRouter) -> None:
    detail = {
        **ACCESS,
        "featureName": "AI Credits",
        "configValues": {"model": "gpt-4"},
        "source": "manual",
        "validUntil": "2025-12-31T00:00:00.000Z",
    }
    body = {
        "result": {
            "data": {
                "json": detail,
                "meta": {"values": {"validUntil": ["Date"]}, "v": 1},
            }
        }
    }
    set_access = route(respx_mock, "POST", "features.setAccess").mock(
        return_value=httpx.Response(200, json=body)
    )
    async with make_client(transformer="superjson") as client:
        result = await client.features.set_access(
            company_id="c1", feature_code="ai_credit", valid_until="2025-12-31T01:00:00+01:00"
        )
    assert json.loads(set_access.calls.last.request.content) == {
        "json": {
            "companyId": "c1",
            "featureCode": "ai_credit",
            "validUntil": "2025-12-31T00:00:00.000Z",
        },
        "meta": {"values": {"validUntil": ["Date"]}, "v": 1},
    }
    assert result.valid_until is not None
    assert result.valid_until.isoformat() == "2025-12-31T00:00:00+00:00"


async def test_track_usage_makes_an_idempotency_key_per_call(respx_mock: respx.MockRouter) -> None:
    track = route(respx_mock, "POST", "billing.trackUsage").mock(return_value=ok(METERED_USAGE))
    async with make_client() as client:
        await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=1)
        await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=1)
    keys = [json.loads(call.request.content)["idempotencyKey"] for call in track.calls]
    assert len(keys) == 2
    assert keys[0] != keys[1]
    assert all(uuid.UUID(key).version == 7 for key in keys)
    assert keys[0] < keys[1]  # time-ordered: made one after the other, they sort so


@pytest.mark.parametrize("quantity", [0, -1, 1.5, True, "3"])
async def test_bad_quantity_is_refused_before_sending(
    respx_mock: respx.MockRouter, quantity: Any
) -> None:
    track = route(respx_mock, "POST", "billing.trackUsage").mock(return_value=ok(METERED_USAGE))
    async with make_client() as client:
        with pytest.raises(InvalidInputError, match="quantity") as info:
            await client.billing.track_usage(
                company_id="c1", feature_code="ai_credit", quantity=quantity
            )
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ChatarminOSError)
    assert track.call_count == 0


async def test_metadata_that_is_not_json_is_refused_before_sending(
    respx_mock: respx.MockRouter,
) -> None:
    track = route(respx_mock, "POST", "billing.trackUsage").mock(return_value=ok(METERED_USAGE))
    async with make_client() as client:
        with pytest.raises(InvalidInputError, match="cannot be sent as JSON"):
            await client.billing.track_usage(
                company_id="c1", feature_code="ai_credit", quantity=1, metadata={"tags": {1, 2}}
            )
    assert track.call_count == 0


# --- errors ---------------------------------------------------------------------------

ERROR_CASES = [
    ("BAD_REQUEST", 400, BadRequestError),
    ("PARSE_ERROR", 400, BadRequestError),
    ("UNAUTHORIZED", 401, AuthenticationError),
    ("FORBIDDEN", 403, PermissionDeniedError),
    ("NOT_FOUND", 404, NotFoundError),
    ("CONFLICT", 409, ConflictError),
    ("PRECONDITION_FAILED", 412, PreconditionFailedError),
    ("UNPROCESSABLE_CONTENT", 422, UnprocessableEntityError),
    ("TOO_MANY_REQUESTS", 429, RateLimitError),
    ("INTERNAL_SERVER_ERROR", 500, InternalServerError),
    ("NOT_IMPLEMENTED", 501, InternalServerError),
    ("SERVICE_UNAVAILABLE", 503, InternalServerError),
    ("PAYMENT_REQUIRED", 402, APIStatusError),
    ("METHOD_NOT_SUPPORTED", 405, APIStatusError),
]


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize(("code", "status", "cls"), ERROR_CASES)
async def test_trpc_errors_map_to_classes(
    respx_mock: respx.MockRouter, transformer: str, code: str, status: int, cls: type
) -> None:
    route(respx_mock, "POST", "billing.trackUsage").mock(
        return_value=trpc_error(
            code,
            status,
            message="Usage limit exceeded",
            path="billing.trackUsage",
            transformer=transformer,
        )
    )
    async with make_client(transformer=transformer, max_retries=0) as client:
        with pytest.raises(APIStatusError) as info:
            await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=1)
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == code
    assert error.message == "Usage limit exceeded"
    assert error.path == "billing.trackUsage"
    assert error.response.status_code == status
    assert str(error) == f"{status} {code} on billing.trackUsage: Usage limit exceeded"


@pytest.mark.parametrize(
    ("status", "cls"), [(418, APIStatusError), (409, ConflictError), (507, InternalServerError)]
)
async def test_unknown_code_maps_by_http_status(
    respx_mock: respx.MockRouter, status: int, cls: type
) -> None:
    route(respx_mock, "GET", "features.check").mock(
        return_value=trpc_error("SOMETHING_NEW", status)
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(APIStatusError) as info:
            await client.features.check(company_id="c1", feature_code="f")
    assert type(info.value) is cls
    assert info.value.code == "SOMETHING_NEW"


NON_TRPC = [
    (
        502,
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        "text/html",
        InternalServerError,
        "502 Bad Gateway",
    ),
    (500, b"", "text/plain", InternalServerError, "(empty body)"),
    (403, b"Forbidden by WAF", "text/plain", PermissionDeniedError, "Forbidden by WAF"),
    (200, b"{not json", "application/json", APIResponseValidationError, "{not json"),
    (200, b'{"data": 1}', "application/json", APIResponseValidationError, '{"data": 1}'),
    (200, b"", "application/json", APIResponseValidationError, "(empty body)"),
]


@pytest.mark.parametrize(("status", "body", "ctype", "cls", "snippet"), NON_TRPC)
async def test_non_trpc_answers_become_typed_errors(
    respx_mock: respx.MockRouter, status: int, body: bytes, ctype: str, cls: type, snippet: str
) -> None:
    route(respx_mock, "GET", "features.check").mock(
        return_value=httpx.Response(status, content=body, headers={"content-type": ctype})
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(ChatarminOSError) as info:
            await client.features.check(company_id="c1", feature_code="f")
    error = info.value
    assert type(error) is cls
    assert isinstance(error, (APIStatusError, APIResponseValidationError))
    assert error.status_code == status
    assert snippet in str(error)
    assert "features.check" in str(error)
    assert not isinstance(error, json.JSONDecodeError)


async def test_long_bodies_are_cut_to_a_snippet(respx_mock: respx.MockRouter) -> None:
    route(respx_mock, "GET", "features.check").mock(
        return_value=httpx.Response(502, text="x" * 5000)
    )
    async with make_client(max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client.features.check(company_id="c1", feature_code="f")
    assert "x" * 200 + "…" in info.value.message
    assert "x" * 201 not in info.value.message


async def test_output_of_the_wrong_shape_is_a_validation_error(
    respx_mock: respx.MockRouter,
) -> None:
    route(respx_mock, "GET", "features.check").mock(return_value=ok({"featureCode": 3}))
    async with make_client() as client:
        with pytest.raises(APIResponseValidationError, match=r"features.check: .*featureCode"):
            await client.features.check(company_id="c1", feature_code="f")


# --- retries --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_queries_retry_these_statuses(respx_mock: respx.MockRouter, status: int) -> None:
    sleeps = Sleeps()
    check = route(respx_mock, "GET", "features.check").mock(
        side_effect=[trpc_error("X", status), trpc_error("X", status), ok(ACCESS)]
    )
    async with make_client(sleeps) as client:
        access = await client.features.check(company_id="c1", feature_code="ai_credit")
    assert access.can_use is True
    assert check.call_count == 3
    assert len(sleeps.calls) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 412, 422, 501, 505])
async def test_other_statuses_are_not_retried(respx_mock: respx.MockRouter, status: int) -> None:
    sleeps = Sleeps()
    check = route(respx_mock, "GET", "features.check").mock(
        side_effect=[trpc_error("X", status), ok(ACCESS)]
    )
    async with make_client(sleeps) as client:
        with pytest.raises(APIStatusError):
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert check.call_count == 1
    assert sleeps.calls == []


@pytest.mark.parametrize(("max_retries", "attempts"), [(0, 1), (2, 3), (4, 5)])
async def test_retries_stop_at_max_retries(
    respx_mock: respx.MockRouter, max_retries: int, attempts: int
) -> None:
    sleeps = Sleeps()
    check = route(respx_mock, "GET", "features.check").mock(
        return_value=trpc_error("SERVICE_UNAVAILABLE", 503)
    )
    async with make_client(sleeps, max_retries=max_retries) as client:
        with pytest.raises(InternalServerError):
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert check.call_count == attempts
    assert len(sleeps.calls) == attempts - 1
    assert all(0 < s <= 8.0 for s in sleeps.calls)


async def test_backoff_grows_exponentially(respx_mock: respx.MockRouter) -> None:
    sleeps = Sleeps()
    route(respx_mock, "GET", "features.check").mock(return_value=trpc_error("X", 503))
    async with make_client(sleeps, max_retries=5) as client:
        with pytest.raises(InternalServerError):
            await client.features.check(company_id="c1", feature_code="ai_credit")
    # 0.5 * 2**n, capped at 8, minus up to 25 % jitter
    for n, slept in enumerate(sleeps.calls):
        top = min(0.5 * 2**n, 8.0)
        assert top * 0.75 <= slept <= top


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "3"}, 3.0), ({"Retry-After": "0"}, 0.0)],
)
async def test_retry_after_headers_are_honoured(
    respx_mock: respx.MockRouter, headers: dict[str, str], expected: float
) -> None:
    sleeps = Sleeps()
    route(respx_mock, "GET", "features.check").mock(
        side_effect=[trpc_error("TOO_MANY_REQUESTS", 429, headers=headers), ok(ACCESS)]
    )
    async with make_client(sleeps) as client:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert sleeps.calls == [expected]


async def test_retry_after_http_date_is_honoured(respx_mock: respx.MockRouter) -> None:
    sleeps = Sleeps()
    # An HTTP date in the past means "now": the wait is 0, not the backoff.
    route(respx_mock, "GET", "features.check").mock(
        side_effect=[
            trpc_error("X", 503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            ok(ACCESS),
        ]
    )
    async with make_client(sleeps) as client:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert len(sleeps.calls) == 1
    assert 0.375 <= sleeps.calls[0] <= 0.5  # a negative wait is ignored: backoff instead


async def test_a_retry_after_beyond_the_cap_falls_back_to_backoff(
    respx_mock: respx.MockRouter,
) -> None:
    sleeps = Sleeps()
    route(respx_mock, "GET", "features.check").mock(
        side_effect=[trpc_error("X", 429, headers={"retry-after": "3600"}), ok(ACCESS)]
    )
    async with make_client(sleeps) as client:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert 0.375 <= sleeps.calls[0] <= 0.5


async def test_track_usage_reuses_its_key_on_every_retry(respx_mock: respx.MockRouter) -> None:
    track = route(respx_mock, "POST", "billing.trackUsage").mock(
        side_effect=[trpc_error("X", 503), httpx.ReadTimeout("slow"), ok(METERED_USAGE)]
    )
    async with make_client() as client:
        await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=2)
    bodies = [call.request.content for call in track.calls]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert uuid.UUID(json.loads(bodies[0])["idempotencyKey"]).version == 7


@pytest.mark.parametrize(
    "failure",
    [
        trpc_error("SERVICE_UNAVAILABLE", 503),
        trpc_error("INTERNAL_SERVER_ERROR", 500),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server hung up"),
    ],
    ids=["503", "500", "read-timeout", "dropped"],
)
async def test_a_mutation_without_a_key_is_not_retried_once_sent(
    respx_mock: respx.MockRouter, failure: Any
) -> None:
    onboard = route(respx_mock, "POST", "onboard").mock(side_effect=[failure, ok({})])
    async with make_client() as client:
        with pytest.raises(ChatarminOSError):
            await client.onboard(external_org_id="org_1", label="My Product")
    assert onboard.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        trpc_error("TOO_MANY_REQUESTS", 429),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
    ],
    ids=["429", "connect-error", "connect-timeout"],
)
async def test_a_mutation_is_retried_when_it_never_applied(
    respx_mock: respx.MockRouter, failure: Any
) -> None:
    result = {
        "companyId": "c1",
        "companyName": "Acme",
        "linkStatus": "created",
        "billingStatus": None,
    }
    onboard = route(respx_mock, "POST", "onboard").mock(side_effect=[failure, ok(result)])
    async with make_client() as client:
        answer = await client.onboard(external_org_id="org_1", label="My Product")
    assert onboard.call_count == 2
    assert answer.link_status == "created"


# --- connection errors and timeouts -----------------------------------------------------


async def test_timeouts_raise_api_timeout_error(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(side_effect=httpx.ReadTimeout("slow"))
    async with make_client(max_retries=1) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.features.check(company_id="c1", feature_code="f")
    assert check.call_count == 2
    assert isinstance(info.value, APIConnectionError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


async def test_connection_errors_raise_api_connection_error(respx_mock: respx.MockRouter) -> None:
    route(respx_mock, "GET", "features.check").mock(side_effect=httpx.ConnectError("refused"))
    async with make_client(max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.features.check(company_id="c1", feature_code="f")
    assert type(info.value) is APIConnectionError
    assert "features.check" in str(info.value)


async def test_timeout_option_reaches_each_request(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    async with make_client(timeout=2.5) as client:
        await client.features.check(company_id="c1", feature_code="f")
        await client.with_options(timeout=httpx.Timeout(9.0, connect=1.0)).features.check(
            company_id="c1", feature_code="f"
        )
    first, second = (call.request.extensions["timeout"] for call in check.calls)
    assert first == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert second == {"connect": 1.0, "read": 9.0, "write": 9.0, "pool": 9.0}


async def test_default_timeout_is_finite(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    async with make_client() as client:
        await client.features.check(company_id="c1", feature_code="f")
    assert check.calls.last.request.extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


# --- configuration ----------------------------------------------------------------------


async def test_api_key_and_base_url_from_the_environment(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_API_KEY", "os_sk_from_env")
    monkeypatch.setenv("CHATARMIN_OS_BASE_URL", "http://localhost:3001/api/v1")
    check = respx_mock.get(url__startswith="http://localhost:3001/api/v1/features.check").mock(
        return_value=ok(ACCESS)
    )
    async with AsyncChatarminOS() as client:
        await client.features.check(company_id="c1", feature_code="f")
    request = check.calls.last.request
    assert request.headers["authorization"] == "Bearer os_sk_from_env"
    assert request.url.path == "/api/v1/features.check"


async def test_no_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OS_API_KEY", raising=False)
    with pytest.raises(ChatarminOSError, match="OS_API_KEY"):
        AsyncChatarminOS()


async def test_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATARMIN_OS_BASE_URL", raising=False)
    async with AsyncChatarminOS(api_key=API_KEY) as client:
        assert str(client.base_url) == "https://os.chatarmin.com/api/v1/"


@pytest.mark.parametrize(
    "base_url", ["https://h.test/api/v1", "https://h.test/api/v1/", "https://h.test/prefix/api/v1"]
)
async def test_a_path_prefix_survives_joining(respx_mock: respx.MockRouter, base_url: str) -> None:
    check = respx_mock.get(url__startswith="https://h.test/").mock(return_value=ok(ACCESS))
    async with make_client(base_url=base_url) as client:
        await client.features.check(company_id="c1", feature_code="f")
    assert (
        check.calls.last.request.url.path
        == base_url.split("h.test")[1].rstrip("/") + "/features.check"
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"base_url": "ftp://x"}, {"transformer": "xml"}, {"max_retries": -1}, {"timeout": "5"}],
)
async def test_bad_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ChatarminOSError):
        make_client(**kwargs)


async def test_default_headers_are_sent(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    async with make_client(default_headers={"X-Tenant": "t1", "Authorization": "nope"}) as client:
        await client.features.check(company_id="c1", feature_code="f")
    headers = check.calls.last.request.headers
    assert headers["x-tenant"] == "t1"
    assert headers["authorization"] == f"Bearer {API_KEY}"


async def test_with_options_shares_the_pool(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    client = make_client(default_headers={"X-A": "1"})
    copy = client.with_options(max_retries=5, default_headers={"X-B": "2"}, api_key="os_sk_other")
    assert copy._pool is client._pool
    assert copy.max_retries == 5
    assert client.max_retries == 2
    assert copy.base_url == client.base_url
    await copy.features.check(company_id="c1", feature_code="f")
    headers = check.calls.last.request.headers
    assert (headers["x-a"], headers["x-b"]) == ("1", "2")
    assert headers["authorization"] == "Bearer os_sk_other"
    await copy.aclose()
    assert not client.is_closed
    await client.aclose()
    assert client.is_closed
    assert copy.is_closed


async def test_a_callers_http_client_is_used_and_left_open(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    mine = httpx.AsyncClient(headers={"X-Mine": "yes"})
    async with make_client(http_client=mine) as client:
        await client.features.check(company_id="c1", feature_code="f")
    assert check.calls.last.request.headers["x-mine"] == "yes"
    assert not mine.is_closed
    await mine.aclose()


async def test_closing_closes_the_pool() -> None:
    client = make_client()
    async with client:
        assert not client.is_closed
    assert client.is_closed


# --- secrets --------------------------------------------------------------------------


async def test_the_api_key_never_reaches_reprs_errors_or_logs(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    route(respx_mock, "GET", "features.check").mock(
        side_effect=[trpc_error("X", 503), trpc_error("UNAUTHORIZED", 401, message="bad key")]
    )
    caplog.set_level(logging.DEBUG, logger="chatarmin_os")
    client = make_client()
    with pytest.raises(AuthenticationError) as info:
        await client.features.check(company_id="c1", feature_code="f")
    await client.aclose()
    texts = [
        repr(client),
        str(client._config),
        repr(client._config),
        str(info.value),
        repr(info.value),
        repr(info.value.response.request.headers),
        caplog.text,
    ]
    assert all(API_KEY not in text for text in texts)
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug[0].startswith("GET features.check -> 503 in ")
    assert debug[0].endswith("(retry 0)")
    assert debug[1].startswith("GET features.check -> 401 in ")
    assert debug[1].endswith("(retry 1)")


async def test_logging_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatarmin_os import _logs

    logger = logging.getLogger("chatarmin_os")
    monkeypatch.setattr(_logs, "_configured", False)
    monkeypatch.setenv("CHATARMIN_OS_LOG", "debug")
    handlers = list(logger.handlers)
    try:
        make_client()
        assert logger.level == logging.DEBUG
        assert len(logger.handlers) == len(handlers) + 1
    finally:
        logger.handlers = handlers
        logger.setLevel(logging.NOTSET)


async def test_input_is_decoded_by_the_helper(respx_mock: respx.MockRouter) -> None:
    check = route(respx_mock, "GET", "features.check").mock(return_value=ok(ACCESS))
    async with make_client() as client:
        await client.features.check(company_id="c1", feature_code="f")
    assert sent_input(check.calls.last.request) == {"companyId": "c1", "featureCode": "f"}
