"""The client inside an application: its pool, keep-alive edges, closed clients, and every way
a send can fail that is not an answer (all of them SDK errors, causes chained)."""

from __future__ import annotations

import gzip
import zlib

import httpcore._async.http11 as http11_module
import httpx
import pytest

from chatarmin_os import (
    APIConnectionError,
    APIResponseValidationError,
    AsyncChatarminOS,
    ChatarminOSError,
    InternalServerError,
)
from chatarmin_os._async._http import KEEPALIVE_EXPIRY
from tests.support.canned import UNMETERED_ACCESS_ANSWER
from tests.support.helpers import API_KEY, BASE_URL
from tests.support.keepalive_server import FakeClock, KeepAliveServer


class Recorder:
    """A mock transport that records every request and answers with ``answer``."""

    def __init__(self, answer: httpx.Response | Exception) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def client_over(handler: Recorder, **options: object) -> AsyncChatarminOS:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), **options)  # type: ignore[arg-type]
    return AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http, max_retries=0)


# --- keep-alive connections at the server's idle timeout ---------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One time line for the pool's expiry (httpcore's, or httpcore2's under httpx2) and the
    fake server's idle timeout."""
    fake = FakeClock()
    monkeypatch.setattr(http11_module, "time", fake)
    try:
        from httpcore2._async import http11 as http11_module2  # our pool's under httpx2
    except ImportError:  # pragma: no cover - httpx2 is not installed
        return fake
    monkeypatch.setattr(http11_module2, "time", fake)
    return fake


# The server's idle timer starts when it sends an answer, a little before the client has
# read it and put the connection back: model 50 ms of that on a 5 s server timeout.
SERVER_IDLE_TIMEOUT = 5.0 - 0.05
GAPS = [0.0, 1.0, 3.9, 3.99, 4.0, 4.5, 4.94, 4.95, 4.97, 4.99, 5.0, 12.0]


async def test_our_pool_never_reuses_a_connection_the_server_is_closing(
    clock: FakeClock,
) -> None:
    with KeepAliveServer(clock, SERVER_IDLE_TIMEOUT) as server:
        async with AsyncChatarminOS(api_key=API_KEY, base_url=server.url, max_retries=0) as client:
            for gap in GAPS:
                clock.advance(gap)
                # A mutation without an idempotency key: never retried once sent.
                usage = await client.billing.track_usage(
                    company_id="c1", feature_code="ai_credit", quantity=1, idempotency_key=None
                )
                assert usage.current_usage == 1
        assert server.dropped == 0
        assert server.answered == len(GAPS)
        # A new connection after every gap longer than KEEPALIVE_EXPIRY (4 s), none otherwise.
        assert server.connections == 1 + sum(gap > KEEPALIVE_EXPIRY for gap in GAPS)


async def test_a_pool_kept_as_long_as_the_server_races_its_close(clock: FakeClock) -> None:
    """Control: httpx's default 5 s expiry reuses a connection at the server's edge."""
    with KeepAliveServer(clock, SERVER_IDLE_TIMEOUT) as server:
        async with httpx.AsyncClient() as http:  # keepalive_expiry=5.0
            client = AsyncChatarminOS(
                api_key=API_KEY, base_url=server.url, http_client=http, max_retries=2
            )
            await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=1)
            clock.advance(4.97)
            with pytest.raises(APIConnectionError) as info:
                await client.companies.create(name="Acme")  # a mutation without a key
            assert isinstance(info.value.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
        assert (server.answered, server.dropped) == (1, 1)  # sent once, not retried


# --- closed clients -------------------------------------------------------------------------


async def test_a_closed_client_refuses_calls_and_sends_nothing() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    client = client_over(handler)
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ChatarminOSError, match="closed") as info:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert type(info.value) is ChatarminOSError
    assert handler.requests == []


async def test_a_closed_http_client_of_yours_is_an_sdk_error() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    client = client_over(handler)
    await client._pool.client().aclose()
    with pytest.raises(ChatarminOSError, match="http_client you passed is closed"):
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert handler.requests == []


async def test_our_own_pool_after_close() -> None:
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL)
    async with client:
        pass
    assert client.is_closed
    with pytest.raises(ChatarminOSError, match="closed"):
        await client.tiers.list()


async def test_a_copy_shares_the_pool_and_closes_on_its_own() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    client = client_over(handler)
    copy = client.with_options(timeout=5.0)
    await copy.aclose()
    assert copy.is_closed and not client.is_closed
    await client.features.check(company_id="c1", feature_code="ai_credit")
    with pytest.raises(ChatarminOSError, match="closed"):
        await copy.features.check(company_id="c1", feature_code="ai_credit")
    assert len(handler.requests) == 1


# --- failures that are not answers ------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(
    ("status", "expected"), [(200, APIResponseValidationError), (500, InternalServerError)]
)
async def test_a_body_that_cannot_be_decoded(
    encoding: str, status: int, expected: type[ChatarminOSError]
) -> None:
    good = gzip.compress(b'{"result":{}}') if encoding == "gzip" else zlib.compress(b"{}")
    broken = good[:8] + b"\x00garbage\xff" * 4
    handler = Recorder(
        httpx.Response(
            status, stream=httpx.ByteStream(broken), headers={"content-encoding": encoding}
        )
    )
    client = client_over(handler)
    with pytest.raises(expected) as info:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert "cannot be decoded" in str(info.value)
    assert encoding in str(info.value)
    assert isinstance(info.value.__cause__, httpx.DecodingError)
    assert len(handler.requests) == 1


async def test_a_redirect_loop_is_a_connection_error_and_not_retried() -> None:
    handler = Recorder(httpx.Response(302, headers={"location": f"{BASE_URL}/features.check"}))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http, max_retries=3)
    with pytest.raises(APIConnectionError, match="Too many redirects") as info:
        await client.features.check(company_id="c1", feature_code="ai_credit")
    assert isinstance(info.value.__cause__, httpx.TooManyRedirects)
    assert len(handler.requests) == 21  # httpx's max_redirects (20) + the first; no retry


@pytest.mark.parametrize(
    "raised",
    [
        RuntimeError("Event loop is closed"),
        ValueError("a bug in a custom transport"),
        httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'gopher://'."),
    ],
    ids=["runtime-error", "value-error", "unsupported-protocol"],
)
async def test_whatever_a_transport_raises_is_an_sdk_error(raised: Exception) -> None:
    handler = Recorder(raised)
    client = client_over(handler)
    with pytest.raises(APIConnectionError) as info:
        await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=1)
    assert info.value.__cause__ is raised
    assert type(raised).__name__ in str(info.value)


async def test_a_query_just_under_the_limit_is_sent() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    client = client_over(handler)
    base = len(f"{BASE_URL}/features.check?input=") + len(
        "%7B%22companyId%22%3A%22c1%22%2C%22featureCode%22%3A%22%22%7D"
    )
    await client.features.check(company_id="c1", feature_code="x" * (65_536 - base))
    assert len(str(handler.requests[0].url)) == 65_536


# --- repr ----------------------------------------------------------------------------------


def test_repr_of_a_client_whose_construction_failed() -> None:
    half = object.__new__(AsyncChatarminOS)
    assert repr(half) == "<AsyncChatarminOS (not configured)>"


# --- a caller's http_client: what it is set up with still applies --------------------------


async def test_a_callers_client_with_hooks_auth_and_params_goes_through_send() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.url.path)

    http = httpx.AsyncClient(
        transport=httpx.MockTransport(handler),
        event_hooks={"request": [hook]},
        params={"tenant": "t1"},
        headers={"X-Team": "growth"},
        cookies={"gateway": "s1"},
    )
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http)
    await client.features.check(company_id="c1", feature_code="ai_credit")
    [request] = handler.requests
    assert seen == ["/api/v1/features.check"]
    assert request.url.params["tenant"] == "t1"
    assert request.headers["x-team"] == "growth"
    assert request.headers["cookie"] == "gateway=s1"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"  # ours wins


async def test_cookies_set_on_your_client_later_are_sent_and_removed_ones_are_not() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http)
    await client.features.check(company_id="c1", feature_code="ai_credit")
    http.cookies.set("gateway", "s2", domain="os.example.test")
    await client.features.check(company_id="c1", feature_code="ai_credit")
    http.cookies.delete("gateway")  # removed one by one: the jar is empty again
    await client.features.check(company_id="c1", feature_code="ai_credit")
    http.cookies.clear()
    await client.features.check(company_id="c1", feature_code="ai_credit")
    assert [r.headers.get("cookie") for r in handler.requests] == [None, "gateway=s2", None, None]


async def test_a_plain_client_of_yours_keeps_its_headers_as_they_change() -> None:
    handler = Recorder(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), headers={"X-Team": "a"})
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http)
    await client.features.check(company_id="c1", feature_code="ai_credit")
    http.headers["X-Team"] = "b"
    await client.features.check(company_id="c1", feature_code="ai_credit")
    assert [r.headers["x-team"] for r in handler.requests] == ["a", "b"]
