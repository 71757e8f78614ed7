"""Request batching (``batching=``, ``features.check_many``): the exact batched wire requests,
each call's own result and error whatever the batch's status, retries of part of a batch,
identical queries sent once, and the fallback for a server that takes no batches.

Calls are made at the same time (tasks here, threads in the generated sync twin); the
batcher's window is held open until every call has joined, so the batches are exact.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chatarmin_os import (
    APIResponseValidationError,
    AsyncChatarminOS,
    BadRequestError,
    BatchOptions,
    ChatarminOSError,
    ConfigurationError,
    FeatureAccess,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
    Tier,
    UsageResult,
)
from chatarmin_os._wire import encode_uri_component, superjson_deserialize
from tests.support._async.batching_helpers import hold
from tests.support.canned import METERED_ACCESS, SIXTH_UNIT_USAGE
from tests.support.concurrently import arun_all
from tests.support.helpers import API_KEY, BASE_URL, TRANSFORMERS, Sleeps, envelope, error_envelope

TIER = {
    "code": "pro",
    "name": "Pro",
    "description": None,
    "baseFee": None,
    "features": [],
    "stripePriceIds": [],
}
COMPANY = {
    "id": "c1",
    "shortId": "acme",
    "name": "Acme",
    "domain": None,
    "createdAt": "2024-01-15T10:30:00.000Z",
}


class Server:
    """A mock transport: records each request and answers with the next canned answer."""

    def __init__(
        self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]
    ) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def targets(self) -> list[str]:
        """Each request as ``METHOD path?query`` relative to the base URL."""
        prefix = len(BASE_URL) + 1
        return [f"{r.method} {str(r.url)[prefix:]}" for r in self.requests]


def answer(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def answer_each(request: httpx.Request) -> httpx.Response:
    """METERED_ACCESS for every call of a batch, or for a plain call."""
    if "batch=1" not in str(request.url):
        return answer(200, envelope(METERED_ACCESS, "json"))
    return answer(200, [envelope(METERED_ACCESS, "json")] * len(request.url.path.split(",")))


def make_client(
    server: Server, *, transformer: str = "json", batching: Any = True, sleeps: Sleeps | None = None
) -> AsyncChatarminOS:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=http,
        transformer=transformer,  # type: ignore[arg-type]
        batching=batching,
        sleep=sleeps or Sleeps(),
    )


def batch_input(request: httpx.Request) -> Any:
    if request.method == "GET":
        return json.loads(parse_qs(urlsplit(str(request.url)).query)["input"][0])
    return json.loads(request.content)


# --- the batched wire -----------------------------------------------------------------------


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_concurrent_queries_travel_as_one_get_batch(transformer: str) -> None:
    server = Server(
        answer(
            200,
            [
                envelope(METERED_ACCESS, transformer),
                envelope({**METERED_ACCESS, "featureCode": "sso"}, transformer),
                envelope(TIER, transformer),
            ],
        )
    )
    client = make_client(server, transformer=transformer)
    hold(client, 3)
    first, second, tier = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.features.check(company_id="c 2", feature_code="sso"),
        lambda: client.tiers.get("pro"),
    )
    assert isinstance(first, FeatureAccess) and first.feature_code == "ai_credit"
    assert isinstance(second, FeatureAccess) and second.feature_code == "sso"
    assert isinstance(tier, Tier) and tier.code == "pro"
    [request] = server.requests
    inputs = {
        "0": {"companyId": "c1", "featureCode": "ai_credit"},
        "1": {"companyId": "c 2", "featureCode": "sso"},
        "2": {"tierCode": "pro"},
    }
    if transformer == "superjson":  # each input wrapped on its own
        inputs = {key: {"json": value} for key, value in inputs.items()}
    encoded = encode_uri_component(json.dumps(inputs, separators=(",", ":")))
    assert server.targets() == [
        f"GET features.check,features.check,tiers.get?batch=1&input={encoded}"
    ]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_concurrent_mutations_travel_as_one_post_batch(transformer: str) -> None:
    server = Server(
        answer(200, [envelope(SIXTH_UNIT_USAGE, transformer), envelope(COMPANY, transformer)])
    )
    client = make_client(server, transformer=transformer)
    hold(client, 2)
    usage, company = await arun_all(
        lambda: client.billing.track_usage(
            company_id="c1", feature_code="ai_credit", quantity=2, idempotency_key="k1"
        ),
        lambda: client.companies.create(name="Acme", created_at="2024-01-15T10:30:00Z"),
    )
    assert isinstance(usage, UsageResult) and usage.current_usage == 6
    assert company.name == "Acme"
    assert server.targets() == ["POST billing.trackUsage,companies.create?batch=1"]
    [request] = server.requests
    assert request.headers["content-type"] == "application/json"
    body = batch_input(request)
    sent = {"0": body["0"], "1": body["1"]}
    if transformer == "superjson":
        assert body["1"]["meta"] == {"values": {"createdAt": ["Date"]}, "v": 1}
        sent = {key: superjson_deserialize(value) for key, value in body.items()}
        sent["1"]["createdAt"] = sent["1"]["createdAt"].isoformat()
    assert sent == {
        "0": {"companyId": "c1", "featureCode": "ai_credit", "quantity": 2, "idempotencyKey": "k1"},
        "1": {
            "name": "Acme",
            "createdAt": "2024-01-15T10:30:00.000Z"
            if transformer == "json"
            else "2024-01-15T10:30:00+00:00",
        },
    }


async def test_queries_and_mutations_never_share_a_batch() -> None:
    server = Server(
        lambda request: answer(
            200,
            [envelope(METERED_ACCESS if request.method == "GET" else SIXTH_UNIT_USAGE, "json")] * 2,
        )
    )
    client = make_client(server)
    hold(client, 4)
    await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="a"),
        lambda: client.billing.track_usage(company_id="c1", feature_code="a", quantity=1),
        lambda: client.features.check(company_id="c1", feature_code="b"),
        lambda: client.billing.track_usage(company_id="c1", feature_code="b", quantity=1),
    )
    assert sorted(target.split("?")[0] for target in server.targets()) == [
        "GET features.check,features.check",
        "POST billing.trackUsage,billing.trackUsage",
    ]


async def test_a_no_input_query_leaves_its_key_out() -> None:
    server = Server(answer(200, [envelope([], "json"), envelope(TIER, "json")]))
    client = make_client(server)
    hold(client, 2)
    tiers, tier = await arun_all(lambda: client.tiers.list(), lambda: client.tiers.get("pro"))
    assert tiers == [] and tier.code == "pro"
    [request] = server.requests
    assert request.url.path.endswith("/tiers.list,tiers.get")
    assert batch_input(request) == {"1": {"tierCode": "pro"}}


# --- each call its own result or error -----------------------------------------------------


async def test_a_207_gives_each_call_its_own_result_or_error() -> None:
    server = Server(
        answer(
            207,
            [
                envelope(METERED_ACCESS, "json"),
                error_envelope(
                    "NOT_FOUND", 404, path="features.check", message='Feature "x" not found'
                ),
                envelope(TIER, "json"),
            ],
        )
    )
    client = make_client(server)
    hold(client, 3)
    ok, missing, tier = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.features.check(company_id="c1", feature_code="x"),
        lambda: client.tiers.get("pro"),
    )
    assert isinstance(ok, FeatureAccess)
    assert isinstance(tier, Tier)
    assert type(missing) is NotFoundError
    assert (missing.status_code, missing.code, missing.path, missing.message) == (
        404,
        "NOT_FOUND",
        "features.check",
        'Feature "x" not found',
    )
    assert len(server.requests) == 1


async def test_a_shared_error_status_gives_every_call_its_own_error() -> None:
    server = Server(
        answer(
            412,
            [
                error_envelope(
                    "PRECONDITION_FAILED", 412, path="billing.trackUsage", message="limit a"
                ),
                error_envelope(
                    "PRECONDITION_FAILED", 412, path="billing.trackUsage", message="limit b"
                ),
            ],
        )
    )
    client = make_client(server)
    hold(client, 2)
    a, b = await arun_all(
        lambda: client.billing.track_usage(company_id="c1", feature_code="a", quantity=1),
        lambda: client.billing.track_usage(company_id="c1", feature_code="b", quantity=1),
    )
    # The server's answers follow the batch's order (with threads, the call made first
    # may be either): each call gets the error at its own place.
    sent = batch_input(server.requests[0])
    by_feature = {"a": a, "b": b}
    first, second = (by_feature[sent[place]["featureCode"]] for place in ("0", "1"))
    assert type(first) is PreconditionFailedError and first.message == "limit a"
    assert type(second) is PreconditionFailedError and second.message == "limit b"
    assert a is not b


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {
                "error": {
                    "message": "Cannot mix procedure types in call: query, mutation",
                    "code": -32600,
                    "data": {"code": "BAD_REQUEST", "httpStatus": 400},
                }
            },
            BadRequestError,
        ),
        (502, "<html>Bad Gateway</html>", InternalServerError),
    ],
    ids=["trpc-error", "html-page"],
)
async def test_an_answer_for_the_whole_batch_fans_out_to_every_call(
    status: int, body: Any, expected: type[ChatarminOSError]
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    server = Server(httpx.Response(status, content=content))
    client = make_client(server, sleeps=Sleeps())
    client = client.with_options(max_retries=0)
    hold(client, 3)
    results = await arun_all(
        *(
            lambda code=code: client.features.check(company_id="c1", feature_code=code)
            for code in ("a", "b", "c")
        )
    )
    assert [type(item) for item in results] == [expected] * 3
    assert len({id(item) for item in results}) == 3  # each call raises its own exception
    assert len(server.requests) == 1


async def test_a_missing_slot_is_an_error_for_that_call_only() -> None:
    server = Server(answer(200, [envelope(METERED_ACCESS, "json")]))
    client = make_client(server)
    hold(client, 2)
    ok, missing = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.features.check(company_id="c1", feature_code="sso"),
    )
    assert isinstance(ok, FeatureAccess)
    assert type(missing) is APIResponseValidationError
    assert "no result for call 1" in str(missing)


# --- retries -------------------------------------------------------------------------------


async def test_a_retried_batch_carries_only_the_calls_that_may_be_sent_again() -> None:
    sleeps = Sleeps()
    server = Server(
        answer(
            503,
            [
                error_envelope("SERVICE_UNAVAILABLE", 503, path="companies.create"),
                error_envelope("SERVICE_UNAVAILABLE", 503, path="billing.trackUsage"),
                error_envelope("SERVICE_UNAVAILABLE", 503, path="billing.trackUsage"),
            ],
        ),
        answer(
            200,
            [
                envelope(SIXTH_UNIT_USAGE, "json"),
                envelope({**SIXTH_UNIT_USAGE, "currentUsage": 7}, "json"),
            ],
        ),
    )
    client = make_client(server, sleeps=sleeps)
    hold(client, 3)
    created, first, second = await arun_all(
        lambda: client.companies.create(name="Acme"),  # no key: not sent twice
        lambda: client.billing.track_usage(
            company_id="c1", feature_code="a", quantity=1, idempotency_key="k1"
        ),
        lambda: client.billing.track_usage(
            company_id="c1", feature_code="b", quantity=1, idempotency_key="k2"
        ),
    )
    assert type(created) is InternalServerError and created.status_code == 503
    assert (first.current_usage, second.current_usage) == (6, 7)
    assert server.targets() == [
        "POST companies.create,billing.trackUsage,billing.trackUsage?batch=1",
        "POST billing.trackUsage,billing.trackUsage?batch=1",
    ]
    retried = batch_input(server.requests[1])
    assert [retried["0"]["idempotencyKey"], retried["1"]["idempotencyKey"]] == ["k1", "k2"]
    assert len(sleeps.calls) == 1


async def test_one_failed_query_of_a_batch_is_retried_alone() -> None:
    server = Server(
        answer(
            207,
            [
                envelope(METERED_ACCESS, "json"),
                error_envelope("SERVICE_UNAVAILABLE", 503, path="features.check"),
            ],
        ),
        answer(200, {"result": {"data": {**METERED_ACCESS, "featureCode": "sso"}}}),
    )
    client = make_client(server)
    hold(client, 2)
    first, second = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.features.check(company_id="c1", feature_code="sso"),
    )
    assert (first.feature_code, second.feature_code) == ("ai_credit", "sso")
    assert [target.split("?")[0] for target in server.targets()] == [
        "GET features.check,features.check",
        "GET features.check",  # one call left: sent as a plain call
    ]
    assert "batch" not in server.targets()[1]


# --- identical queries, limits ------------------------------------------------------------------


async def test_identical_queries_in_flight_are_sent_once() -> None:
    server = Server(answer(200, [envelope(METERED_ACCESS, "json"), envelope(TIER, "json")]))
    client = make_client(server)
    hold(client, 4)
    results = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.tiers.get("pro"),
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
        lambda: client.features.check(company_id="c1", feature_code="ai_credit"),
    )
    assert [type(item) for item in results] == [FeatureAccess, Tier, FeatureAccess, FeatureAccess]
    assert results[0] == results[2] == results[3]
    assert results[0] is not results[2]  # each caller gets a model of its own
    assert server.targets()[0].startswith("GET features.check,tiers.get?batch=1")
    assert len(server.requests) == 1


async def test_batches_stay_within_max_items() -> None:
    server = Server(answer_each)
    client = make_client(server, batching=BatchOptions(max_items=2))
    hold(client, 5)
    results = await arun_all(
        *(
            lambda code=code: client.features.check(company_id="c1", feature_code=code)
            for code in "abcde"
        )
    )
    assert all(isinstance(item, FeatureAccess) for item in results)
    assert sorted(len(r.url.path.split(",")) for r in server.requests) == [1, 2, 2]
    assert sum("batch=1" in str(r.url) for r in server.requests) == 2


async def test_a_get_batch_never_passes_max_url_length_and_a_long_call_goes_alone() -> None:
    server = Server(answer_each)
    client = make_client(server, batching=BatchOptions(max_url_length=600))
    hold(client, 4)
    results = await arun_all(
        lambda: client.features.check(company_id="c1", feature_code="a" * 40),
        lambda: client.features.check(company_id="c1", feature_code="b" * 40),
        lambda: client.features.check(company_id="c1", feature_code="c" * 500),  # alone
        lambda: client.features.check(company_id="c1", feature_code="d" * 40),
    )
    assert all(isinstance(item, FeatureAccess) for item in results)
    batched = [r for r in server.requests if "batch=1" in str(r.url)]
    assert [len(str(r.url)) <= 600 for r in batched] == [True]
    assert len(batched[0].url.path.split(",")) == 3
    alone = [r for r in server.requests if "batch=1" not in str(r.url)]
    assert len(alone) == 1 and "c" * 500 in alone[0].url.params["input"]


# --- a server without batching ------------------------------------------------------------------


async def test_a_server_without_batching_gets_single_calls_from_then_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = answer(
        400,
        {
            "error": {
                "message": "Batching is not enabled on the server",
                "code": -32600,
                "data": {"code": "BAD_REQUEST", "httpStatus": 400},
            }
        },
    )

    def serve(request: httpx.Request) -> httpx.Response:
        if "batch=1" in str(request.url):
            return refusal
        return answer(
            200,
            envelope({**METERED_ACCESS, "featureCode": request.url.params["input"][-5:-2]}, "json"),
        )

    server = Server(serve)
    client = make_client(server)
    hold(client, 2)
    with caplog.at_level(logging.WARNING, logger="chatarmin_os"):
        first = await arun_all(
            lambda: client.features.check(company_id="c1", feature_code="aaa"),
            lambda: client.features.check(company_id="c1", feature_code="bbb"),
        )
        hold(client, 2)
        second = await arun_all(
            lambda: client.features.check(company_id="c1", feature_code="ccc"),
            lambda: client.features.check(company_id="c1", feature_code="ddd"),
        )
    assert [item.feature_code for item in first + second] == ["aaa", "bbb", "ccc", "ddd"]
    targets = [target.split("?")[0] for target in server.targets()]
    assert targets[0] == "GET features.check,features.check"
    assert targets[1:] == ["GET features.check"] * 4  # no call lost, no batch tried again
    warnings = [r for r in caplog.records if "does not take tRPC batches" in r.getMessage()]
    assert len(warnings) == 1


# --- options -------------------------------------------------------------------------------------


async def test_with_options_turns_batching_on_and_off() -> None:
    server = Server(
        lambda request: (
            answer(200, [envelope(METERED_ACCESS, "json")] * 2)
            if "batch" in str(request.url)
            else answer(200, envelope(METERED_ACCESS, "json"))
        )
    )
    client = make_client(server, batching=False)
    assert client.batching is None
    batched = client.with_options(batching=True)
    assert batched.batching == BatchOptions()
    assert batched.with_options(timeout=3.0).batching == BatchOptions()
    assert batched.with_options(batching=False).batching is None
    hold(batched, 2)
    await arun_all(
        lambda: batched.features.check(company_id="c1", feature_code="a"),
        lambda: batched.features.check(company_id="c1", feature_code="b"),
    )
    assert server.targets()[0].startswith("GET features.check,features.check?batch=1")


@pytest.mark.parametrize(
    "options",
    [{"max_items": 0}, {"max_url_length": True}, {"wait": -1}, {"wait": float("nan")}],
    ids=["no-items", "bool-length", "negative-wait", "nan-wait"],
)
def test_bad_batch_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="BatchOptions"):
        BatchOptions(**options)


def test_batching_must_be_a_bool_or_options() -> None:
    with pytest.raises(ConfigurationError, match="batching must be"):
        AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, batching="yes")  # type: ignore[arg-type]


# --- explicit batches ----------------------------------------------------------------------------


async def test_check_many_sends_batches_of_max_items() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        inputs = batch_input(request)
        return answer(
            200,
            [
                envelope({**METERED_ACCESS, "featureCode": inputs[key]["featureCode"]}, "json")
                for key in sorted(inputs, key=int)
            ],
        )

    server = Server(serve)
    client = make_client(server, batching=False)
    checks = [("c1", f"f{i}") for i in range(120)]
    results = await client.features.check_many(checks)
    assert [access.feature_code for access in results] == [f"f{i}" for i in range(120)]
    assert [len(r.url.path.split(",")) for r in server.requests] == [50, 50, 20]


async def test_check_many_refuses_bad_input_before_sending() -> None:
    server = Server(answer(200, [envelope(METERED_ACCESS, "json")]))
    client = make_client(server, batching=False)
    with pytest.raises(InvalidInputError) as info:
        await client.features.check_many([("c1", "a"), {"company_id": "c1", "feature_code": ""}])
    assert info.value.argument == "checks[1].feature_code"
    with pytest.raises(InvalidInputError):
        await client.features.check_many(["c1"])  # type: ignore[list-item]
    assert server.requests == []


async def test_check_many_raises_the_first_error_or_returns_them_in_place() -> None:
    body = [
        envelope(METERED_ACCESS, "json"),
        error_envelope("NOT_FOUND", 404, path="features.check", message="no such feature"),
    ]
    server = Server(answer(207, body))
    client = make_client(server, batching=False)
    with pytest.raises(NotFoundError, match="no such feature"):
        await client.features.check_many([("c1", "ai_credit"), ("c1", "nope")])
    results = await client.features.check_many(
        [{"company_id": "c1", "feature_code": "ai_credit"}, ("c1", "nope")], return_exceptions=True
    )
    assert isinstance(results[0], FeatureAccess)
    assert type(results[1]) is NotFoundError
