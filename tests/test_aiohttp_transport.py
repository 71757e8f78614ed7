"""``DefaultAioHttpClient``: the async client over aiohttp, against real servers.

Calls, usage and batching go to a real ``chatarmin-os serve`` (and the Node reference router
for batching); failures to the in-process ``ChatarminOSServer`` over HTTP (its faults) and to
a small aiohttp server that answers what the test needs (gzip, broken bodies, recorded
headers). Forks are real ``os.fork()`` children, loops real ``asyncio.run`` calls.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import httpx
import pytest
import trio
from aiohttp import web

from chatarmin_os import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncChatarminOS,
    ConfigurationError,
    DefaultAioHttpClient,
    InternalServerError,
    NotFoundError,
    UsageBufferOptions,
)
from chatarmin_os._aiohttp_transport import AioHttpTransport
from chatarmin_os.testing import ChatarminOSServer
from tests.support.aiohttp_server import serving
from tests.support.canned import UNMETERED_ACCESS_ANSWER
from tests.support.helpers import Sleeps
from tests.support.needs import start_reference_server
from tests.support.reference_server import ReferenceServer
from tests.support.serve_process import ServeProcess

KEY = "os_sk_aiohttp_test"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = ServeProcess.start(["--api-key", KEY], tmp_path_factory.mktemp("aiohttp"))
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture
def local() -> Iterator[ChatarminOSServer]:
    with ChatarminOSServer() as server:
        yield server


def over_aiohttp(base_url: str, api_key: str = KEY, **options: Any) -> AsyncChatarminOS:
    return AsyncChatarminOS(
        api_key=api_key, base_url=base_url, http_client=DefaultAioHttpClient(), **options
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the extra ---------------------------------------------------------------------------


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_chatarmin_os_does_not_import_aiohttp() -> None:
    done = run_python(
        "import sys, chatarmin_os\n"
        "assert 'aiohttp' not in sys.modules\n"
        "chatarmin_os.DefaultAioHttpClient\n"
        "assert 'aiohttp' in sys.modules\n"
        "print('DefaultAioHttpClient' in dir(chatarmin_os))"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")


def test_without_aiohttp_the_error_names_the_extra() -> None:
    done = run_python(
        "import sys; sys.modules['aiohttp'] = None\nfrom chatarmin_os import DefaultAioHttpClient"
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        'ImportError: DefaultAioHttpClient needs aiohttp: pip install "chatarmin-os[aiohttp]"'
    )


def test_it_is_an_httpx_async_client_on_the_aiohttp_transport() -> None:
    http = DefaultAioHttpClient()
    assert isinstance(http, httpx.AsyncClient)
    assert isinstance(http._transport, AioHttpTransport)
    mine = httpx.AsyncHTTPTransport()
    assert DefaultAioHttpClient(transport=mine)._transport is mine


# --- calls against chatarmin-os serve ----------------------------------------------------


async def test_calls_and_usage(serve: ServeProcess) -> None:
    async with DefaultAioHttpClient() as http:
        client = AsyncChatarminOS(api_key=KEY, base_url=serve.base_url, http_client=http)
        company = await client.companies.create(name="Aio Inc")
        await client.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=5
        )
        tracked = await client.billing.track_usage(
            company_id=company.id, feature_code="ai_credit", quantity=2
        )
        assert (tracked.current_usage, tracked.duplicate) == (2, False)
        access = await client.features.check(company_id=company.id, feature_code="ai_credit")
        assert (access.current_usage, access.remaining) == (2, 3)
        await client.aclose()
        assert not http.is_closed  # the caller's client stays the caller's


async def test_concurrent_calls_each_get_their_own_answer(serve: ServeProcess) -> None:
    codes = ["free", "pro", "enterprise"] * 20
    async with over_aiohttp(serve.base_url) as client:
        tiers = await asyncio.gather(*(client.tiers.get(code) for code in codes))
    assert [tier.code for tier in tiers] == codes


async def test_usage_buffer_and_cache_through_aiohttp(serve: ServeProcess) -> None:
    async with over_aiohttp(
        serve.base_url, cache=True, usage_buffer=UsageBufferOptions(flush_interval=0.01)
    ) as client:
        onboarded = await client.onboard(external_org_id="org_aio", label="App", tier_code="free")
        company_id = onboarded.company_id
        first = await client.features.check(company_id=company_id, feature_code="ai_credit")
        assert (first.source, first.remaining) == ("live", 100)
        for _ in range(3):
            await client.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=2
            )
        assert await client.flush(timeout=30) == 0
        after = await client.features.check(company_id=company_id, feature_code="ai_credit")
        assert (after.source, after.current_usage, after.remaining) == ("cache", 6, 94)
    async with over_aiohttp(serve.base_url) as fresh:
        live = await fresh.features.check(company_id=company_id, feature_code="ai_credit")
    assert live.current_usage == 6  # on the server, not just in the cache


@pytest.fixture
def router() -> Iterator[ReferenceServer]:
    server = start_reference_server("json")
    try:
        yield server
    finally:
        server.stop()


async def test_batched_calls_go_as_one_request(router: ReferenceServer) -> None:
    async with over_aiohttp(router.base_url, batching=True, max_retries=0) as client:
        checks = await asyncio.gather(
            *(client.features.check(company_id="c1", feature_code=f"f{i}") for i in range(5))
        )
    assert len(checks) == 5
    [request] = router.requests()
    assert urlsplit(request["url"]).path == "/api/v1/" + ",".join(["features.check"] * 5)
    assert [call["input"]["featureCode"] for call in router.calls()] == [f"f{i}" for i in range(5)]


# --- failures, through the in-process server over HTTP ------------------------------------


async def test_error_statuses_and_trpc_errors(local: ChatarminOSServer) -> None:
    async with over_aiohttp(local.base_url, local.api_key, max_retries=0) as client:
        local.faults.fail_next("tiers.list", status=404)
        with pytest.raises(NotFoundError):
            await client.tiers.list()
        local.faults.fail_next("tiers.list", status=500)
        with pytest.raises(InternalServerError) as info:
            await client.tiers.list()
        assert info.value.status_code == 500
        with pytest.raises(NotFoundError) as missing:  # a tRPC error of the router itself
            await client.tiers.get("no_such_tier")
        assert missing.value.code == "NOT_FOUND"
        local.faults.fail_next("*", status=502, body="<html>Bad gateway</html>")
        with pytest.raises(InternalServerError) as gateway:
            await client.tiers.list()
        assert gateway.value.status_code == 502


async def test_retries_wait_what_retry_after_says(local: ChatarminOSServer) -> None:
    sleeps = Sleeps()
    local.faults.fail_next("tiers.list", times=2, status=429, retry_after=2)
    async with over_aiohttp(local.base_url, local.api_key, max_retries=2, sleep=sleeps) as c:
        tiers = await c.tiers.list()
    assert [tier.code for tier in tiers] == ["free", "pro", "enterprise"]
    assert sleeps.calls == [2.0, 2.0]
    assert [fired.status for fired in local.faults.fired] == [429, 429]


async def test_no_answer_within_the_read_timeout_is_a_timeout(local: ChatarminOSServer) -> None:
    local.faults.timeout_next("tiers.list", hold=30)
    async with over_aiohttp(local.base_url, local.api_key, max_retries=0, timeout=0.3) as c:
        with pytest.raises(APITimeoutError, match=r"timed out \(ReadTimeout\)") as info:
            await c.tiers.list()
        assert isinstance(info.value.__cause__, httpx.ReadTimeout)
        assert (await c.tiers.list())[0].code == "free"  # and goes on


async def test_a_dropped_answer_is_a_connection_error(local: ChatarminOSServer) -> None:
    local.faults.drop_next("tiers.list")
    async with over_aiohttp(local.base_url, local.api_key, max_retries=0) as c:
        with pytest.raises(APIConnectionError) as info:
            await c.tiers.list()
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


async def test_connection_refused_is_a_connection_error_and_retried() -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}/api/v1"
    async with over_aiohttp(url, max_retries=2, sleep=sleeps) as client:
        with pytest.raises(APIConnectionError, match="ConnectError") as info:
            await client.tiers.list()
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(sleeps.calls) == 2  # never sent: retried


async def test_no_free_connection_in_time_is_a_never_sent_timeout(
    local: ChatarminOSServer,
) -> None:
    local.faults.timeout_next("tiers.list", hold=30)
    http = DefaultAioHttpClient(limits=httpx.Limits(max_connections=1))
    sleeps = Sleeps()
    client = AsyncChatarminOS(
        api_key=local.api_key,
        base_url=local.base_url,
        http_client=http,
        timeout=httpx.Timeout(30.0, pool=0.2),
        max_retries=1,
        sleep=sleeps,
    )
    holding = asyncio.create_task(client.tiers.list())  # takes the only connection
    with anyio.fail_after(30):
        while not local.faults.fired:  # until the server holds it
            await asyncio.sleep(0.01)
    with pytest.raises(APITimeoutError, match=r"timed out \(PoolTimeout\)") as info:
        # a mutation without idempotency key: retried only because it was never sent
        await client.companies.create(name="Waiting Inc")
    assert isinstance(info.value.__cause__, httpx.PoolTimeout)
    assert len(sleeps.calls) == 1
    holding.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holding
    await http.aclose()


# --- the wire itself, through a small aiohttp server ---------------------------------------


class Answers:
    """What the test server answers next, and the headers of every request it got."""

    def __init__(self) -> None:
        self.body = json.dumps(UNMETERED_ACCESS_ANSWER).encode()
        self.headers: dict[str, str] = {}
        self.seen: list[list[tuple[str, str]]] = []


@pytest.fixture
async def wire() -> AsyncIterator[tuple[Answers, str]]:
    answers = Answers()

    async def handle(request: web.Request) -> web.Response:
        answers.seen.append([(name.lower(), value) for name, value in request.headers.items()])
        return web.Response(body=answers.body, headers=answers.headers)

    async with serving(handle, "/api/v1") as url:
        yield answers, url


async def test_the_same_headers_as_httpx_sends(wire: tuple[Answers, str]) -> None:
    answers, url = wire
    for http in (httpx.AsyncClient(), DefaultAioHttpClient()):
        async with AsyncChatarminOS(api_key=KEY, base_url=url, http_client=http) as client:
            await client.features.check(company_id="c1", feature_code="ai_credit")
        await http.aclose()
    over_httpx, over_aiohttp_ = answers.seen
    assert over_aiohttp_ == over_httpx
    assert ("authorization", f"Bearer {KEY}") in over_aiohttp_


async def test_calls_go_the_direct_road_with_no_httpx_request_built_first(
    wire: tuple[Answers, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, url = wire
    roads: list[str] = []
    direct, generic = AioHttpTransport.send_wire, AioHttpTransport.handle_async_request

    async def send_wire(self: AioHttpTransport, request: Any) -> httpx.Response:
        roads.append("direct")
        assert request._built is None  # nothing built before sending
        return await direct(self, request)

    async def handle(self: AioHttpTransport, request: httpx.Request) -> httpx.Response:
        roads.append("httpx")
        return await generic(self, request)

    monkeypatch.setattr(AioHttpTransport, "send_wire", send_wire)
    monkeypatch.setattr(AioHttpTransport, "handle_async_request", handle)
    answers.headers = {"X-Request-Id": "req_direct"}
    async with over_aiohttp(url) as client:
        raw = await client.with_raw_response.features.check(
            company_id="c1", feature_code="ai_credit"
        )
    assert roads == ["direct"]
    response = raw.http_response
    # The answer's headers as httpx's own transport gives them; read and closed already.
    assert response.headers.raw == httpx.Headers(response.headers.raw).raw
    assert response.headers["x-request-id"] == "req_direct"
    assert response.headers.encoding == "ascii"
    assert response.is_closed and response.is_stream_consumed
    assert response.request.url == httpx.URL(
        f"{url}/features.check?input=%7B%22companyId%22%3A%22c1%22%2C%22featureCode%22%3A%22ai_credit%22%7D"
    )
    assert raw.request_id == "req_direct"
    assert raw.parse().current_usage == 1
    # A client with an event hook is not plain: httpx's own send, hooks and all.
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(request.method)

    http = DefaultAioHttpClient(event_hooks={"request": [hook]})
    async with AsyncChatarminOS(api_key=KEY, base_url=url, http_client=http) as client:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    await http.aclose()
    assert (roads, hooked) == (["direct", "httpx"], ["GET"])
    assert answers.seen[0] == answers.seen[1]  # the same request either way


async def test_the_request_an_answer_names_is_built_only_when_asked_for(
    wire: tuple[Answers, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, url = wire
    sent: list[Any] = []
    direct = AioHttpTransport.send_wire

    async def send_wire(self: AioHttpTransport, request: Any) -> httpx.Response:
        sent.append(request)
        return await direct(self, request)

    monkeypatch.setattr(AioHttpTransport, "send_wire", send_wire)
    async with over_aiohttp(url) as client:
        await client.features.check(company_id="c1", feature_code="ai_credit")
        assert sent[0]._built is None  # answered and parsed: no httpx.Request made
        raw = await client.with_raw_response.features.check(
            company_id="c1", feature_code="ai_credit"
        )
        request = raw.http_request  # a raw response names its request: made for it, once
        assert sent[1]._built is request
        assert raw.http_response.request is request
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.url.path == "/api/v1/features.check"
        answers.body = b"{}"  # not a tRPC answer: the error names the request
        with pytest.raises(APIResponseValidationError) as info:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    failed = info.value.response
    assert failed is not None
    assert failed.request.url.params["input"] == '{"companyId":"c1","featureCode":"ai_credit"}'


async def test_answer_headers_that_are_not_ascii_decode_as_httpx_decodes_them(
    wire: tuple[Answers, str],
) -> None:
    answers, url = wire
    answers.headers = {"X-Request-Id": "req_é", "X-Note": "café"}
    async with over_aiohttp(url) as client:
        raw = await client.with_raw_response.features.check(
            company_id="c1", feature_code="ai_credit"
        )
    headers = raw.http_response.headers
    reference = httpx.Headers(headers.raw)
    assert (headers.encoding, headers["x-note"]) == (reference.encoding, reference["x-note"])
    assert headers["x-note"] == "café"
    assert raw.request_id == "req_é"


async def test_clients_sharing_one_aiohttp_client_send_their_own_headers(
    wire: tuple[Answers, str],
) -> None:
    answers, url = wire
    http = DefaultAioHttpClient()
    first = AsyncChatarminOS(api_key="os_sk_first", base_url=url, http_client=http)
    second = AsyncChatarminOS(api_key="os_sk_second", base_url=url, http_client=http)
    for client in (first, second, first, second.with_options(max_retries=0), first):
        await client.features.check(company_id="c1", feature_code="ai_credit")
    await http.aclose()
    keys = [dict(seen)["authorization"].split()[1] for seen in answers.seen]
    assert keys == ["os_sk_first", "os_sk_second", "os_sk_first", "os_sk_second", "os_sk_first"]


async def test_a_gzip_answer_is_decoded_once(wire: tuple[Answers, str]) -> None:
    answers, url = wire
    answers.body = gzip.compress(answers.body)
    answers.headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with over_aiohttp(url) as client:
        access = await client.features.check(company_id="c1", feature_code="ai_credit")
    assert access.current_usage == 1
    assert "gzip" in dict(answers.seen[0])["accept-encoding"]


async def test_a_broken_gzip_answer_cannot_be_decoded(wire: tuple[Answers, str]) -> None:
    answers, url = wire
    answers.body = gzip.compress(answers.body)[:8] + b"\x00garbage\xff" * 4
    answers.headers = {"Content-Encoding": "gzip"}
    async with over_aiohttp(url, max_retries=2) as client:
        with pytest.raises(APIResponseValidationError, match="cannot be decoded") as info:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert isinstance(info.value.__cause__, httpx.DecodingError)
    assert len(answers.seen) == 1  # not retried, as with httpx


# --- event loops and processes -------------------------------------------------------------


def test_one_client_under_two_event_loops(serve: ServeProcess) -> None:
    http = DefaultAioHttpClient()
    client = AsyncChatarminOS(api_key=KEY, base_url=serve.base_url, http_client=http)

    async def call(code: str) -> str:
        return (await client.tiers.get(code)).code

    assert asyncio.run(call("pro")) == "pro"
    transport = http._transport
    assert isinstance(transport, AioHttpTransport)
    first = transport._session
    assert first is not None and first.closed  # closed with its loop by asyncio.run
    assert asyncio.run(call("free")) == "free"
    assert transport._session is not first

    async def close() -> None:
        assert await call("enterprise") == "enterprise"
        await http.aclose()
        assert first is not None and transport._session is None

    asyncio.run(close())


def test_a_forked_child_gets_its_own_connections(serve: ServeProcess) -> None:
    http = DefaultAioHttpClient()
    client = AsyncChatarminOS(api_key=KEY, base_url=serve.base_url, http_client=http)
    transport = http._transport
    assert isinstance(transport, AioHttpTransport)

    async def call(code: str) -> str:
        return (await client.tiers.get(code)).code

    async def in_the_parent() -> None:
        assert await call("pro") == "pro"  # a pooled connection exists before the fork
        session = transport._session
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # The parent's loop is not the child's to run: the child runs its own (in
                # a thread: this one still has the parent's loop marked running).
                got: list[str] = []
                worker = threading.Thread(target=lambda: got.append(asyncio.run(call("free"))))
                worker.start()
                worker.join()
                code = 0 if got == ["free"] else 2
                code = code or (3 if transport._session is session else 0)
            finally:
                os._exit(code)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert transport._session is session and session is not None and not session.closed
        assert await call("enterprise") == "enterprise"  # the parent goes on as before
        await http.aclose()

    asyncio.run(in_the_parent())


def test_trio_is_refused_clearly(serve: ServeProcess) -> None:
    client = over_aiohttp(serve.base_url)

    async def call() -> None:
        await client.tiers.list()

    with pytest.raises(ConfigurationError, match="runs on asyncio only"):
        trio.run(call)


def test_exceptions_map_to_httpx() -> None:
    from chatarmin_os._aiohttp_transport import _httpx_error

    request = httpx.Request("GET", "http://127.0.0.1/")
    key = aiohttp.client_reqrep.ConnectionKey("h", 1, False, False, None, None, None)
    cases: list[tuple[BaseException, type[httpx.TransportError]]] = [
        (aiohttp.ConnectionTimeoutError("t"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("t"), httpx.ReadTimeout),
        (aiohttp.ClientConnectorError(key, OSError(111, "refused")), httpx.ConnectError),
        (aiohttp.ClientProxyConnectionError(key, OSError(111, "x")), httpx.ProxyError),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("short"), httpx.RemoteProtocolError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (asyncio.TimeoutError(), httpx.ReadTimeout),
    ]
    for source, target in cases:
        mapped = _httpx_error(source, request)
        assert type(mapped) is target, source
        assert mapped.request is request
