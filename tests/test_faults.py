"""Fault injection and the live server: exact answers on the wire, in-process and over HTTP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest

from chatarmin_os import (
    APIConnectionError,
    APITimeoutError,
    AsyncChatarminOS,
    InternalServerError,
    RateLimitError,
)
from chatarmin_os.testing import ChatarminOSServer, Faults, FiredFault, LocalChatarminOS
from chatarmin_os.testing import _server as server_module

AUTH = {"Authorization": "Bearer os_sk_local_dev"}


@pytest.fixture
def server() -> Iterator[ChatarminOSServer]:
    with ChatarminOSServer() as server:
        yield server


def test_an_error_answer_on_the_wire(server: ChatarminOSServer) -> None:
    server.faults.fail_next("tiers.list", status=429, retry_after=2)
    answer = httpx.get(server.base_url + "/tiers.list", headers=AUTH)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "2"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "error": {
            "message": "Injected fault (TOO_MANY_REQUESTS)",
            "code": -32029,
            "data": {"code": "TOO_MANY_REQUESTS", "httpStatus": 429, "path": "tiers.list"},
        }
    }
    assert httpx.get(server.base_url + "/tiers.list", headers=AUTH).status_code == 200


def test_a_batch_superjson_and_a_raw_body(server: ChatarminOSServer) -> None:
    server.faults.fail_next("tiers.get", code="SERVICE_UNAVAILABLE", message="maintenance")
    url = (
        server.base_url
        + "/tiers.list,tiers.get?batch=1&input="
        + json.dumps({"1": {"json": {"tierCode": "pro"}}})
    )
    answer = httpx.get(url, headers=AUTH)
    assert answer.status_code == 503
    shape = {
        "message": "maintenance",
        "code": -32603,
        "data": {"code": "SERVICE_UNAVAILABLE", "httpStatus": 503, "path": ""},
    }
    expected = []
    for path in ("tiers.list", "tiers.get"):
        expected.append({"error": {"json": {**shape, "data": {**shape["data"], "path": path}}}})
    assert answer.json() == expected

    server.faults.fail_next("*", status=502, body="<html>Bad gateway</html>")
    raw = httpx.get(server.base_url + "/tiers.list", headers=AUTH)
    assert (raw.status_code, raw.text) == (502, "<html>Bad gateway</html>")
    server.faults.fail_next("*", status=418)
    assert httpx.get(server.base_url + "/tiers.list").text == "HTTP 418"


def test_faults_queue_in_order_and_can_be_cleared() -> None:
    faults = Faults()
    faults.fail_next("tiers.list", times=2, status=500)
    faults.drop_next("*")
    faults.timeout_next("onboard", applied=True, hold=3)
    assert [(f.procedure, f.kind, f.remaining) for f in faults.pending()] == [
        ("tiers.list", "status", 2),
        ("*", "drop", 1),
        ("onboard", "timeout", 1),
    ]
    assert faults.take(["onboard"]) is not None and faults.take(["onboard"]) is not None
    assert [(f.procedure, f.kind) for f in faults.pending()] == [("tiers.list", "status")]
    assert [(f.procedure, f.kind, f.status) for f in faults.fired] == [
        ("onboard", "drop", None),
        ("onboard", "timeout", None),
    ]
    faults.clear()
    assert faults.pending() == [] and faults.take(["tiers.list"]) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.fail_next("billing.track_usage"), "did you mean 'billing.trackUsage'"),
        (lambda f: f.fail_next("tiers.list", status=200), "HTTP error status"),
        (lambda f: f.fail_next("tiers.list", code="NOPE"), "unknown tRPC code 'NOPE'"),
        (lambda f: f.fail_next("tiers.list", retry_after=-1), "retry_after must be"),
        (lambda f: f.drop_next("tiers.list", times=0), "times must be an int >= 1"),
        (lambda f: f.timeout_next("tiers.list", hold=0), "hold must be seconds > 0"),
    ],
)
def test_bad_faults_are_refused(call: object, message: str) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match=message):
        call(faults)  # type: ignore[operator]
    assert faults.pending() == []


async def test_the_async_in_process_transport() -> None:
    local = LocalChatarminOS()
    company_id = local.add_company(limits={"ai_credit": 5})
    async with local.async_client() as client:
        local.faults.drop_next("billing.trackUsage")
        usage = await client.billing.track_usage(
            company_id=company_id, feature_code="ai_credit", quantity=2
        )
        assert usage.duplicate is True and usage.current_usage == 2
        local.faults.timeout_next("tiers.list", times=3)
        with pytest.raises(APITimeoutError, match="timed out"):
            await client.tiers.list()
        local.faults.fail_next("tiers.list", status=503, times=3)
        with pytest.raises(InternalServerError, match="Injected fault"):
            await client.tiers.list()
        local.faults.drop_next("companies.create")
        with pytest.raises(APIConnectionError, match="disconnected"):
            await client.companies.create(name="Dropped")
    assert len(local.retry_waits) == 5  # 1 + 2 + 2 retries, none slept
    local.assert_usage(company_id, "ai_credit", 2)
    assert local.client().companies.create(name="Dropped").short_id == "dropped-2"
    local.close()


def test_an_async_client_over_http(server: ChatarminOSServer) -> None:
    async def main() -> int:
        server.faults.fail_next("tiers.list", status=429, retry_after=0)
        async with server.async_client() as client:
            return len(await client.tiers.list())

    assert anyio.run(main) == 3
    assert server.retry_waits == [0.0]


class HoldClock:
    """The live server's clock while it holds an answer: seconds pass only when the test
    says so; ``polled`` is set once the server has read it three times (the deadline, then
    the hold check before and after one wait on the connection), so it is holding."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0
        self.polled = threading.Event()

    def monotonic(self) -> float:
        self.reads += 1
        if self.reads >= 3:
            self.polled.set()
        return self.now


def test_a_held_answer_ends_when_its_hold_has_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = HoldClock()
    monkeypatch.setattr(server_module, "time", clock)
    with ChatarminOSServer() as server, ThreadPoolExecutor(1) as pool:
        server.faults.timeout_next("tiers.list", hold=0.2)
        answer = pool.submit(httpx.get, server.base_url + "/tiers.list", headers=AUTH, timeout=30)
        assert clock.polled.wait(5)
        assert not answer.done()  # held: the hold's time has not passed
        clock.now += 0.2
        with pytest.raises(httpx.RemoteProtocolError):  # the server gave up, not the client
            answer.result(timeout=60)
        assert server.faults.fired == [FiredFault("tiers.list", "timeout", None)]
        assert server.faults.pending() == []


def test_a_held_answer_is_released_on_stop() -> None:
    with ChatarminOSServer() as server:
        server.faults.timeout_next("tiers.list", hold=3600)  # held for an hour ...
        picked_up = threading.Event()
        take = server.faults.take

        def take_and_tell(paths: list[str]) -> object:
            try:
                return take(paths)
            finally:
                picked_up.set()

        server.faults.take = take_and_tell  # type: ignore[method-assign,assignment]
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(b"GET /api/v1/tiers.list HTTP/1.1\r\nHost: x\r\n\r\n")
        assert picked_up.wait(5)
        stopped = threading.Event()

        def stop() -> None:
            server.stop()  # ... unless the server stops
            stopped.set()

        stopper = threading.Thread(target=stop)
        stopper.start()
        # Bounded waits, far below the hour: only the stop can have ended the hold.
        assert stopped.wait(30)
        stopper.join()
        connection.settimeout(30)
        assert connection.recv(100) == b""
        connection.close()


def test_stop_closes_keep_alive_connections_and_start_again(server: ChatarminOSServer) -> None:
    with server.client() as client:
        assert len(client.tiers.list()) == 3  # a kept-alive connection is open
        server.stop()
        assert repr(server) == "<ChatarminOSServer stopped>"
        with pytest.raises(APIConnectionError):
            client.with_options(max_retries=0).tiers.list()
    server.start()
    assert len(server.client().tiers.list()) == 3


def test_a_server_of_its_own_closes_its_engine() -> None:
    server = ChatarminOSServer().start()
    engine = server.engine
    assert server.environ() == {
        "OS_API_KEY": "os_sk_local_dev",
        "CHATARMIN_OS_BASE_URL": f"http://127.0.0.1:{server.port}/api/v1",
    }
    server.close()
    assert repr(engine) == "<LocalEngine closed, 1 product(s)>"


def test_a_shared_server_leaves_the_engine_open() -> None:
    local = LocalChatarminOS()
    with ChatarminOSServer(local) as server:
        server.faults.fail_next("tiers.list", status=429)
        with pytest.raises(RateLimitError):
            local.client(max_retries=0).tiers.list()  # one Faults for both ways in
    assert repr(local.engine) == "<LocalEngine open, 1 product(s)>"
    local.close()


def test_paths_outside_the_prefix_are_not_faulted(server: ChatarminOSServer) -> None:
    server.faults.fail_next("*", status=500)
    assert httpx.get(server.url + "/elsewhere/tiers.list").status_code == 404
    assert [f.procedure for f in server.faults.pending()] == ["*"]


def test_an_sdk_client_of_its_own_sees_status_faults(server: ChatarminOSServer) -> None:
    server.faults.fail_next("tiers.list", status=503, times=3)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        client = AsyncChatarminOS(api_key=server.api_key, base_url=server.base_url, sleep=sleep)
        async with client:
            with pytest.raises(InternalServerError, match="503 SERVICE_UNAVAILABLE"):
                await client.tiers.list()

    anyio.run(main)
    assert len(waits) == 2


@pytest.mark.parametrize("over_http", [False, True], ids=["in-process", "http"])
def test_faults_read_paths_as_the_server_does(over_http: bool) -> None:
    """The injector reads a request with the server's own parsing: a trailing slash and a
    percent-escape name the procedure; what the server refuses before reading a path (a
    malformed escape, a path outside the prefix) is never faulted."""
    with ChatarminOSServer() as server:
        base = server.base_url if over_http else server.local.base_url
        http = httpx.Client(headers=AUTH) if over_http else server.local._http_client()
        with http:
            server.faults.fail_next("tiers.list", times=2, status=503)
            assert http.get(base + "/tiers.list/").status_code == 503
            assert http.get(base + "/tiers%2Elist").status_code == 503
            server.faults.fail_next("*", status=503)
            assert http.get(base + "/%zz").status_code == 400
            assert http.get(base.removesuffix("/api/v1") + "/v2/tiers.list").status_code == 404
            assert [f.procedure for f in server.faults.pending()] == ["*"]
            server.faults.clear()
            server.faults.fail_next("tiers.get", status=503)
            batch = http.get(base + "/tiers.list,tiers.get?batch=1")
            assert batch.status_code == 503
            assert [e["error"]["data"]["path"] for e in batch.json()] == ["tiers.list", "tiers.get"]
        assert [f.procedure for f in server.faults.fired] == [
            "tiers.list",
            "tiers.list",
            "tiers.list,tiers.get",
        ]
