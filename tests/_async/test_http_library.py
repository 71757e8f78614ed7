"""httpx and httpx2: either library's client as ``http_client=``, httpx2 for our own pool
when installed (``CHATARMIN_OS_HTTP_LIBRARY`` forces one), errors mapped and retried alike.

The transports are the libraries' own ``MockTransport``s (respx mocks httpx only).
"""

from __future__ import annotations

import json
import pickle
import sys
from types import ModuleType
from typing import Any

import httpx
import pytest

from chatarmin_os import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncChatarminOS,
    ChatarminOSError,
    ConfigurationError,
)
from chatarmin_os._client.library import ENV_VAR
from tests.support.helpers import API_KEY, BASE_URL, Sleeps

httpx2 = pytest.importorskip("httpx2", reason="httpx2 is not installed (Python 3.11+)")

LIBRARIES = [httpx, httpx2]
ACCESS = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 5,
    "quantityLimit": 100,
    "includedQuantity": 50,
    "remaining": 95,
}
USAGE = {
    "featureCode": "ai_credit",
    "currentUsage": 10,
    "quantityLimit": 100,
    "includedQuantity": 5,
    "remaining": 90,
    "billableQuantity": 5,
    "isAtLimit": False,
    "duplicate": False,
}


class Recorder:
    """A ``MockTransport`` handler: records each request, answers from a script (an
    exception to raise, or a ``(status, body, headers)``), then ``ok`` with ``data``."""

    def __init__(self, lib: ModuleType, data: Any, script: list[Any] | None = None) -> None:
        self.lib = lib
        self.data = data
        self.script = list(script or [])
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, type) and issubclass(step, Exception):
            raise step("injected", request=request)
        if step is not None:
            status, body, headers = step
            return self.lib.Response(status, json=body, headers=headers)
        return self.lib.Response(200, json={"result": {"data": self.data}})


def http_client_of(lib: ModuleType, handler: Recorder) -> Any:
    return lib.AsyncClient(transport=lib.MockTransport(handler))


def make_client(**kwargs: Any) -> AsyncChatarminOS:
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("base_url", BASE_URL)
    kwargs.setdefault("sleep", Sleeps())
    return AsyncChatarminOS(**kwargs)


# --- your client ----------------------------------------------------------------------


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
async def test_your_client_of_either_library_is_used(lib: ModuleType) -> None:
    handler = Recorder(lib, ACCESS)
    async with http_client_of(lib, handler) as mine:
        async with make_client(http_client=mine) as client:
            access = await client.features.check(company_id="c1", feature_code="ai_credit")
        assert not mine.is_closed  # yours: left open
    assert access.remaining == 95
    [request] = handler.requests
    assert type(request) is lib.Request  # built with the library of the client it went through
    assert request.method == "GET"
    assert str(request.url).startswith(f"{BASE_URL}/features.check?input=")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
async def test_a_mutation_through_either_library_is_a_json_post(lib: ModuleType) -> None:
    handler = Recorder(lib, USAGE)
    async with http_client_of(lib, handler) as mine, make_client(http_client=mine) as client:
        await client.billing.track_usage(
            company_id="c1", feature_code="ai_credit", quantity=3, idempotency_key="k1"
        )
    [request] = handler.requests
    assert type(request) is lib.Request
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content)["idempotencyKey"] == "k1"


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
async def test_your_clients_default_headers_are_sent(lib: ModuleType) -> None:
    handler = Recorder(lib, ACCESS)
    async with lib.AsyncClient(
        transport=lib.MockTransport(handler), headers={"X-Tenant": "t1"}
    ) as mine:
        async with make_client(http_client=mine) as client:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert handler.requests[0].headers["x-tenant"] == "t1"


@pytest.mark.parametrize("wrong", [object(), "http://x", httpx.Client(), httpx2.Client()])
async def test_anything_else_is_refused_naming_both_libraries(wrong: Any) -> None:
    if isinstance(wrong, (httpx.AsyncClient, httpx2.AsyncClient)):  # pragma: no cover
        pytest.skip("the sync twin's right type")
    with pytest.raises(ChatarminOSError) as caught:
        make_client(http_client=wrong)
    assert str(caught.value) == (
        "http_client must be an httpx.AsyncClient or an httpx2.AsyncClient, "
        f"got {type(wrong).__name__}"
    )


# --- our own pool ---------------------------------------------------------------------


async def test_our_pool_is_httpx2_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    async with make_client() as client:
        assert type(client._pool.client()) is httpx2.AsyncClient


async def test_the_variable_forces_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "httpx")
    async with make_client() as client:
        assert type(client._pool.client()) is httpx.AsyncClient


async def test_our_pool_is_httpx_without_httpx2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "httpx2", None)  # `import httpx2` raises ImportError
    async with make_client() as client:
        assert type(client._pool.client()) is httpx.AsyncClient


async def test_forcing_httpx2_without_it_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, "httpx2")
    monkeypatch.setitem(sys.modules, "httpx2", None)
    async with make_client() as client:
        with pytest.raises(ConfigurationError, match=r"chatarmin-os\[httpx2\]"):
            client._pool.client()


async def test_a_wrong_library_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "requests")
    async with make_client() as client:
        with pytest.raises(ConfigurationError) as caught:
            client._pool.client()
    assert str(caught.value) == f"{ENV_VAR} must be 'httpx' or 'httpx2', got 'requests'"


# --- errors, retries, timeouts -----------------------------------------------------------

# What each transport failure becomes, and whether a mutation without a key is sent again
# (only when the request certainly never reached the server).
FAILURES = [
    ("ConnectError", APIConnectionError, True),
    ("PoolTimeout", APITimeoutError, True),
    ("ReadTimeout", APITimeoutError, False),
    ("RemoteProtocolError", APIConnectionError, False),
]


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
@pytest.mark.parametrize(("name", "error", "resent"), FAILURES, ids=[f[0] for f in FAILURES])
async def test_transport_failures_map_and_retry_alike(
    lib: ModuleType, name: str, error: type[Exception], resent: bool
) -> None:
    exc = getattr(lib, name)
    # A query is retried after any of them, until the budget is spent.
    handler = Recorder(lib, ACCESS, [exc, exc, exc])
    sleeps = Sleeps()
    async with http_client_of(lib, handler) as mine:
        async with make_client(http_client=mine, max_retries=2, sleep=sleeps) as client:
            with pytest.raises(error) as caught:
                await client.features.check(company_id="c1", feature_code="ai_credit")
    assert type(caught.value) is error
    assert isinstance(caught.value.__cause__, exc)
    assert str(caught.value).startswith(
        "Request to features.check timed out"
        if error is APITimeoutError
        else f"Connection error calling features.check: {name}: injected"
    )
    assert isinstance(caught.value.request, lib.Request)  # type: ignore[attr-defined]
    assert len(handler.requests) == 3
    assert len(sleeps.calls) == 2
    # A mutation without an idempotency key is sent again only if it was never sent.
    handler = Recorder(lib, {"id": "co_1"}, [exc])
    async with http_client_of(lib, handler) as mine:
        async with make_client(http_client=mine, max_retries=2) as client:
            # Sent again, the call is answered (with an output too short for a Company).
            with pytest.raises(APIResponseValidationError if resent else error):
                await client.companies.create(name="Acme", external_org_id="org_1")
    assert len(handler.requests) == (2 if resent else 1)


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
async def test_retry_after_is_honoured_alike(lib: ModuleType) -> None:
    busy = {"error": {"json": {"message": "slow down", "code": -32029, "data": {}}}}
    handler = Recorder(lib, ACCESS, [(429, busy, {"Retry-After": "3"})])
    sleeps = Sleeps()
    async with http_client_of(lib, handler) as mine:
        async with make_client(http_client=mine, sleep=sleeps) as client:
            access = await client.features.check(company_id="c1", feature_code="ai_credit")
    assert access.remaining == 95
    assert sleeps.calls == [3.0]


@pytest.mark.parametrize("lib", LIBRARIES, ids=["httpx", "httpx2"])
async def test_a_timeout_of_either_library_is_sent_per_phase(lib: ModuleType) -> None:
    handler = Recorder(lib, ACCESS)
    async with http_client_of(lib, handler) as mine:
        timeout = lib.Timeout(7.0, connect=2.0)
        async with make_client(http_client=mine, timeout=timeout) as client:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert handler.requests[0].extensions["timeout"] == {
        "connect": 2.0,
        "read": 7.0,
        "write": 7.0,
        "pool": 7.0,
    }


async def test_an_httpx2_error_pickles_without_the_key_and_comes_back_httpx2() -> None:
    denied = {"error": {"json": {"message": "no", "code": -32003, "data": {}}}}
    handler = Recorder(httpx2, ACCESS, [(403, denied, {})])
    async with http_client_of(httpx2, handler) as mine, make_client(http_client=mine) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert isinstance(caught.value.response, httpx2.Response)
    data = pickle.dumps(caught.value)
    assert API_KEY.encode() not in data
    revived = pickle.loads(data)
    assert type(revived) is type(caught.value)
    assert isinstance(revived.response, httpx2.Response)
    assert revived.response.status_code == 403
    assert isinstance(revived.response.request, httpx2.Request)
