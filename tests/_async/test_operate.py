"""Request ids, raw responses and per-call options, against the local ChatarminOS.

In process (``AsyncChatarminOS.local()``), over real HTTP (``ChatarminOSServer``, the server
``chatarmin-os serve`` runs) and through a recording httpx transport answered by the local
engine, so what reached the wire is asserted exactly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from chatarmin_os import (
    APIResponse,
    AsyncChatarminOS,
    InvalidInputError,
    NotFoundError,
    TierSummary,
)
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from chatarmin_os.local.transport import AsyncLocalTransport
from chatarmin_os.testing import ChatarminOSServer
from tests.support._async.batching_helpers import hold
from tests.support.concurrently import arun_all

REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")
BASE_URL = "http://chatarmin-os.local/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0).as_dict()


class Recording(httpx.AsyncBaseTransport):
    """An httpx transport answered by the local engine that keeps every request and answer."""

    def __init__(self, engine: LocalEngine) -> None:
        self.inner = AsyncLocalTransport(engine)
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.responses.append(response)
        return response


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine()
    yield eng
    eng.close()


@pytest.fixture
def wire(engine: LocalEngine) -> Recording:
    return Recording(engine)


def recorded(wire: Recording, **options: Any) -> AsyncChatarminOS:
    client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, **options)
    client._own_pool(lambda: httpx.AsyncClient(transport=wire))
    return client


@pytest.fixture
async def client(wire: Recording) -> AsyncIterator[AsyncChatarminOS]:
    async with recorded(wire) as os:
        yield os


@pytest.fixture
def server() -> Iterator[ChatarminOSServer]:
    with ChatarminOSServer() as served:
        yield served


@pytest.fixture
async def http_client(server: ChatarminOSServer) -> AsyncIterator[AsyncChatarminOS]:
    async with AsyncChatarminOS(api_key=server.api_key, base_url=server.base_url) as os:
        yield os


def header_id(response: httpx.Response) -> str:
    value = response.headers["x-request-id"]
    assert REQUEST_ID.fullmatch(value), value
    return value


# Request ids


async def test_a_result_carries_the_request_id_of_its_answer(
    client: AsyncChatarminOS, wire: Recording
) -> None:
    tier = await client.tiers.get("pro")
    assert tier._request_id == header_id(wire.responses[-1])
    assert "_request_id" not in tier.model_dump() and "request_id" not in tier.to_dict()
    again = await client.tiers.get("pro")
    assert again._request_id == header_id(wire.responses[-1]) != tier._request_id
    assert again == tier  # the id is not part of the model's data


async def test_each_item_of_a_list_result_carries_the_request_id(
    client: AsyncChatarminOS, wire: Recording
) -> None:
    tiers = await client.tiers.list()
    assert len(tiers) > 1
    assert {tier._request_id for tier in tiers} == {header_id(wire.responses[-1])}


async def test_results_over_http_and_in_process_carry_request_ids(
    http_client: AsyncChatarminOS,
) -> None:
    over_http = await http_client.onboard(external_org_id="org_1", label="App", tier_code="free")
    assert over_http._request_id is not None and REQUEST_ID.fullmatch(over_http._request_id)
    async with AsyncChatarminOS.local() as local:
        in_process = await local.tiers.get("free")
        assert in_process._request_id is not None
        assert REQUEST_ID.fullmatch(in_process._request_id)


async def test_a_not_found_error_carries_the_request_id_in_its_message(
    client: AsyncChatarminOS, wire: Recording, http_client: AsyncChatarminOS
) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.tiers.get("no_such_tier")
    request_id = header_id(wire.responses[-1])
    assert info.value.request_id == request_id
    assert str(info.value) == (
        f'404 NOT_FOUND on tiers.get: Tier "no_such_tier" not found [request_id: {request_id}]'
    )
    with pytest.raises(NotFoundError) as over_http:
        await http_client.features.get_access_by_external_org_id("org_nobody")
    assert over_http.value.request_id == over_http.value.response.headers["x-request-id"]
    assert str(over_http.value).endswith(f"[request_id: {over_http.value.request_id}]")


async def test_an_error_without_the_header_has_no_request_id() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        error = {"message": "gone", "code": -32004, "data": {"code": "NOT_FOUND"}}
        return httpx.Response(404, json={"error": error})

    client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL)
    client._own_pool(lambda: httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    async with client:
        with pytest.raises(NotFoundError) as info:
            await client.tiers.get("pro")
    assert info.value.request_id is None
    assert str(info.value) == "404 NOT_FOUND on tiers.get: gone"


async def test_calls_of_one_batch_share_their_requests_id(wire: Recording) -> None:
    async with recorded(wire, batching=True) as client:
        hold(client, 3)
        free, pro, missing = await arun_all(
            lambda: client.tiers.get("free"),
            lambda: client.tiers.get("pro"),
            lambda: client.tiers.get("no_such_tier"),
        )
    assert len(wire.requests) == 1
    request_id = header_id(wire.responses[0])
    assert free._request_id == pro._request_id == request_id
    assert isinstance(missing, NotFoundError) and missing.request_id == request_id


async def test_debug_logs_name_the_request_id(
    client: AsyncChatarminOS, wire: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chatarmin_os")
    await client.tiers.list()
    request_id = header_id(wire.responses[-1])
    lines = [r.getMessage() for r in caplog.records if r.name == "chatarmin_os"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET tiers.list -> 200 [{request_id}] in ")
    assert lines[0].endswith(" ms (retry 0)")


async def test_a_cached_answer_carries_the_id_of_the_request_that_filled_it(
    wire: Recording,
) -> None:
    async with recorded(wire, cache=True) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        sent = len(wire.requests)
        live = await client.features.check(
            company_id=onboarded.company_id, feature_code="ai_credit"
        )
        filled_by = header_id(wire.responses[-1])
        cached = await client.features.check(
            company_id=onboarded.company_id, feature_code="ai_credit"
        )
    assert len(wire.requests) == sent + 1  # the second check was not sent
    assert live._request_id == cached._request_id == filled_by
    assert cached.provenance == "cache"


# Raw responses


async def test_raw_response_of_tiers_list(client: AsyncChatarminOS, wire: Recording) -> None:
    response = await client.with_raw_response.tiers.list()
    assert isinstance(response, APIResponse)
    assert response.status_code == 200
    request_id = header_id(wire.responses[-1])
    assert response.headers["x-request-id"] == response.request_id == request_id
    assert response.http_request.method == "GET"
    assert response.http_request.url == httpx.URL(f"{BASE_URL}/tiers.list")
    assert isinstance(response.elapsed, timedelta) and response.elapsed >= timedelta(0)
    tiers = response.parse()
    assert tiers is response.parse()
    assert tiers == await client.tiers.list()
    assert all(isinstance(tier, TierSummary) for tier in tiers)
    assert {tier._request_id for tier in tiers} == {request_id}


async def test_raw_responses_over_http_and_in_process(http_client: AsyncChatarminOS) -> None:
    response = await http_client.with_raw_response.tiers.list()
    assert response.status_code == 200
    assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
    assert response.parse() == await http_client.tiers.list()
    async with AsyncChatarminOS.local() as local:
        raw = await local.with_raw_response.tiers.list()
        assert raw.status_code == 200 and raw.request_id is not None
        assert raw.http_request.url.path == "/api/v1/tiers.list"
        assert raw.parse() == await local.tiers.list()


async def test_raw_onboard_and_a_raw_error(client: AsyncChatarminOS) -> None:
    response = await client.with_raw_response.onboard(
        external_org_id="org_1", label="App", tier_code="free"
    )
    assert response.status_code == 200 and response.http_request.method == "POST"
    assert response.parse().link_status == "created"
    with pytest.raises(NotFoundError) as info:
        await client.with_raw_response.tiers.get("no_such_tier")
    assert info.value.request_id is not None


async def test_a_raw_response_never_shows_the_api_key(client: AsyncChatarminOS) -> None:
    response = await client.with_raw_response.tiers.get("pro")
    assert response.http_request.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    texts = [repr(response), str(response), repr(response.http_request), repr(response.headers)]
    texts.append(repr(response.http_request.headers))
    assert all(DEFAULT_API_KEY not in text for text in texts), texts
    assert repr(response) == (
        f"<APIResponse [200] GET '/api/v1/tiers.get' request_id={response.request_id!r}>"
    )


async def test_raw_calls_always_ask_the_server(wire: Recording) -> None:
    async with recorded(wire, cache=True) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        await client.features.check(company_id=onboarded.company_id, feature_code="ai_credit")
        sent = len(wire.requests)
        response = await client.with_raw_response.features.check(
            company_id=onboarded.company_id, feature_code="ai_credit"
        )
        assert len(wire.requests) == sent + 1
        assert response.request_id == header_id(wire.responses[-1])
        assert response.parse().provenance == "live"
        plain = await client.features.check(
            company_id=onboarded.company_id, feature_code="ai_credit"
        )
        assert len(wire.requests) == sent + 1 and plain.provenance == "cache"


def test_every_public_method_has_a_raw_twin() -> None:
    client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL)
    raw = client.with_raw_response
    for name in ("companies", "contacts", "features", "billing", "tiers", "subscriptions", "links"):
        namespace = getattr(client, name)
        methods = {m for m in dir(type(namespace)) if not m.startswith("_")}
        methods -= {"track_usage_later", "reserve"}  # they send through the buffer / ledger
        assert methods and all(callable(getattr(getattr(raw, name), m)) for m in methods), name
    assert callable(raw.onboard)


# Per-call options


async def test_options_reach_only_their_request(client: AsyncChatarminOS, wire: Recording) -> None:
    await client.tiers.get(
        "pro", extra_headers={"X-Trace": "t-1"}, extra_query={"debug": 1}, timeout=7.0
    )
    await client.tiers.get("pro")
    first, second = wire.requests
    assert first.headers["x-trace"] == "t-1"
    assert first.url.params["debug"] == "1"
    assert first.url.params["input"] == '{"tierCode":"pro"}'
    assert first.extensions["timeout"] == httpx.Timeout(7.0).as_dict()
    assert "x-trace" not in second.headers
    assert "debug" not in second.url.params
    assert second.extensions["timeout"] == DEFAULT_TIMEOUT
    assert first.headers["authorization"] == second.headers["authorization"]


async def test_options_on_a_mutation_and_a_timeout_object(
    client: AsyncChatarminOS, wire: Recording
) -> None:
    timeout = httpx.Timeout(3.0, connect=1.0)
    await client.onboard(
        external_org_id="org_1", label="App", extra_headers={"X-Trace": "t-2"}, timeout=timeout
    )
    await client.onboard(external_org_id="org_2", label="App", timeout=None)
    first, second = wire.requests
    assert first.method == "POST" and first.headers["x-trace"] == "t-2"
    assert first.extensions["timeout"] == timeout.as_dict()
    assert "x-trace" not in second.headers
    assert second.extensions["timeout"] == httpx.Timeout(None).as_dict()


async def test_a_call_with_options_leaves_the_batch_of_its_neighbours(wire: Recording) -> None:
    async with recorded(wire, batching=True) as client:
        hold(client, 2)
        results = await arun_all(
            lambda: client.tiers.get("free", extra_headers={"X-Trace": "t-3"}),
            lambda: client.tiers.get("pro"),
            lambda: client.tiers.get("enterprise"),
        )
    assert [tier.code for tier in results] == ["free", "pro", "enterprise"]
    alone = [r for r in wire.requests if "x-trace" in r.headers]
    batches = [r for r in wire.requests if "x-trace" not in r.headers]
    assert len(alone) == 1 and alone[0].url.path == "/api/v1/tiers.get"
    assert len(batches) == 1 and batches[0].url.path == "/api/v1/tiers.get,tiers.get"
    assert results[0]._request_id != results[1]._request_id == results[2]._request_id


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"extra_headers": {"Authorization": "Bearer os_sk_other"}}, "extra_headers"),
        ({"extra_headers": {"bad header": "x"}}, "extra_headers"),
        ({"extra_headers": {"X-A": "line\nbreak"}}, "extra_headers['X-A']"),
        ({"extra_headers": {"X-A": 1}}, "extra_headers['X-A']"),
        ({"extra_headers": ["X-A"]}, "extra_headers"),
        ({"extra_query": {"input": "{}"}}, "extra_query"),
        ({"extra_query": {"a": [1]}}, "extra_query['a']"),
        ({"extra_query": "a=1"}, "extra_query"),
        ({"extra_query": {"a": "\ud800"}}, "extra_query"),
        ({"extra_query": {"a": 10**5000}}, "extra_query"),
        ({"extra_query": {"a": None}}, "extra_query['a']"),
        ({"extra_headers": {"Content-Length": "1"}}, "extra_headers"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, read=-2.0)}, "timeout.read"),
    ],
)
async def test_bad_options_are_refused_before_anything_is_sent(
    wire: Recording, options: dict[str, Any], argument: str
) -> None:
    async with recorded(wire, cache=True) as client:
        with pytest.raises(InvalidInputError) as info:
            await client.tiers.list(**options)
        assert info.value.argument == argument
        with pytest.raises(InvalidInputError):
            await client.features.check(company_id="c1", feature_code="f", **options)
    assert wire.requests == []
    assert "os_sk_other" not in str(info.value)


async def test_a_cached_read_with_options_is_still_answered_from_the_cache(
    wire: Recording,
) -> None:
    async with recorded(wire, cache=True) as client:
        onboarded = await client.onboard(external_org_id="org_1", label="App", tier_code="free")
        company = onboarded.company_id
        await client.features.check(company_id=company, feature_code="ai_credit", timeout=2.0)
        sent = len(wire.requests)
        assert wire.requests[-1].extensions["timeout"] == httpx.Timeout(2.0).as_dict()
        cached = await client.features.check(
            company_id=company, feature_code="ai_credit", extra_headers={"X-Trace": "t-4"}
        )
    assert len(wire.requests) == sent and cached.provenance == "cache"


async def test_options_reach_every_request_of_a_call(
    client: AsyncChatarminOS, wire: Recording
) -> None:
    await client.onboard(external_org_id="org_1", label="App", tier_code="free")
    await client.billing.track_usage(
        external_org_id="org_1", feature_code="ai_credit", quantity=1, extra_headers={"X-T": "5"}
    )
    results = await client.features.check_many(
        [(company, "ai_credit") for company in ("c1", "c2")],
        return_exceptions=True,
        extra_query={"v": "2"},
    )
    lookup, usage, many = wire.requests[1:]
    assert lookup.url.path.endswith("companies.getByProductLink") and lookup.headers["x-t"] == "5"
    assert usage.url.path.endswith("billing.trackUsage") and usage.headers["x-t"] == "5"
    assert many.url.params["batch"] == "1" and many.url.params["v"] == "2"
    assert len(results) == 2


async def test_options_through_your_own_http_client(engine: LocalEngine) -> None:
    seen: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    transport = AsyncLocalTransport(engine)
    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [hook]}) as http:
        async with AsyncChatarminOS(
            api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http
        ) as client:
            response = await client.with_raw_response.tiers.list(
                extra_headers={"X-Trace": "t-6"}, timeout=4.0
            )
            await client.tiers.list()
    first, second = seen
    assert first.headers["x-trace"] == "t-6"
    assert first.extensions["timeout"] == httpx.Timeout(4.0).as_dict()
    assert "x-trace" not in second.headers
    assert second.extensions["timeout"] == DEFAULT_TIMEOUT
    assert response.http_request is first
