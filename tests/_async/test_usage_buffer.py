"""The usage buffer (``billing.track_usage_later``): batching, retries with the same keys,
refusals, full-buffer policies, flush and close, org ids, stats, and a fault-injection run.

Most tests run the buffer in manual mode with a fake clock and sleeper: no worker runs, the
test calls ``buffer._step()`` (one round) or ``flush()`` (rounds in the caller), and time
only moves when the fake sleeper is called or the test advances it. The tests marked as using
the worker run the real background worker (a task here, a thread in the sync twin).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    BadRequestError,
    ChatarminOSError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    UnlinkedOrgError,
    UsageBufferFullError,
    UsageBufferOptions,
    UsageBufferStats,
    UsageEvent,
    UsageResult,
)
from chatarmin_os._async._usage_buffer import AsyncUsageBuffer
from chatarmin_os._concurrency import AsyncEvent, asleep, await_event, new_async_event
from chatarmin_os.local.transport import AsyncLocalTransport
from chatarmin_os.testing import LocalChatarminOS
from tests.support.concurrently import arun_all
from tests.support.helpers import API_KEY, BASE_URL

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
T0 = 1_700_000_000.0


class FakeTime:
    """A clock that only moves when told to, and a sleeper that moves it (and records)."""

    def __init__(self) -> None:
        self.now = T0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def usage(feature: str, current: int, duplicate: bool = False) -> dict[str, Any]:
    return {
        "featureCode": feature,
        "currentUsage": current,
        "quantityLimit": None,
        "includedQuantity": None,
        "remaining": None,
        "billableQuantity": current,
        "isAtLimit": False,
        "duplicate": duplicate,
    }


def trpc_error(code: str, status: int, path: str = "billing.trackUsage") -> dict[str, Any]:
    return {
        "error": {
            "message": f"refused: {code}",
            "code": -32600,
            "data": {"code": code, "httpStatus": status, "path": path},
        }
    }


def calls(request: httpx.Request) -> list[dict[str, Any]]:
    """The inputs of a POST (one call, or a batch in order)."""
    body = json.loads(request.content)
    if "batch=1" not in str(request.url):
        return [body]
    return [body[str(index)] for index in range(len(body))]


def keys(request: httpx.Request) -> list[str]:
    return [call["idempotencyKey"] for call in calls(request)]


Plan = httpx.Response | Callable[[httpx.Request], httpx.Response]


class UsageServer:
    """A stand-in ChatarminOS: counts each idempotency key once (``duplicate`` after),
    looks up linked orgs, and answers from ``plan`` first when asked to."""

    def __init__(self, *plan: Plan, orgs: dict[str, str] | None = None) -> None:
        self.plan = list(plan)
        self.orgs = orgs or {}
        self.requests: list[httpx.Request] = []
        self.counted: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.plan:
            step = self.plan.pop(0)
            return step(request) if callable(step) else step
        return self.answer(request)

    def company(self, lookup: dict[str, str]) -> dict[str, Any] | None:
        """What ``companies.getByProductLink`` answers for one lookup."""
        company = self.orgs.get(lookup["externalOrgId"])
        if company is None:
            return None
        return {
            "id": company,
            "shortId": company,
            "name": company,
            "domain": None,
            "createdAt": "2024-01-15T10:30:00.000Z",
        }

    def answer(
        self, request: httpx.Request, errors: dict[int, tuple[str, int]] | None = None
    ) -> httpx.Response:
        if request.method == "GET":
            lookups = json.loads(request.url.params["input"])
            if "batch=1" not in str(request.url):
                return httpx.Response(200, json={"result": {"data": self.company(lookups)}})
            answers = [
                {"result": {"data": self.company(lookups[str(i)])}} for i in range(len(lookups))
            ]
            return httpx.Response(200, json=answers)
        items = []
        for index, call in enumerate(calls(request)):
            if errors and index in errors:
                items.append(trpc_error(*errors[index]))
                continue
            key = call["idempotencyKey"]
            duplicate = key in self.counted
            self.counted.setdefault(key, call["quantity"])
            items.append(
                {"result": {"data": usage(call["featureCode"], len(self.counted), duplicate)}}
            )
        if "batch=1" not in str(request.url):
            item = items[0]
            status = 200 if "result" in item else item["error"]["data"]["httpStatus"]
            return httpx.Response(status, json=item)
        return httpx.Response(207 if errors else 200, json=items)

    def track_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]


CLIENTS: list[AsyncChatarminOS] = []


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Close the clients a test made (their spool files included) once it is over."""
    yield
    while CLIENTS:
        await CLIENTS.pop().aclose()


def make_client(
    server: UsageServer, time: FakeTime | None = None, *, manual: bool = True, **options: Any
) -> AsyncChatarminOS:
    """A client over ``server`` whose buffer runs on fake time (manual mode: no worker)."""
    time = time or FakeTime()
    # A client with a spool starts a worker at once for what the spool holds (resume());
    # in manual mode there must be none, so it may not start before manual mode is set.
    resume = AsyncUsageBuffer.resume
    if manual:
        setattr(AsyncUsageBuffer, "resume", lambda self: None)  # noqa: B010
    try:
        client = AsyncChatarminOS(
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
            sleep=time.sleep,
            usage_buffer=UsageBufferOptions(**options),
        )
    finally:
        setattr(AsyncUsageBuffer, "resume", resume)  # noqa: B010
    buffer = client.usage_buffer
    buffer._clock = time.clock
    buffer._manual = manual
    CLIENTS.append(client)
    return client


async def track(client: AsyncChatarminOS, key: str, quantity: int = 1, **extra: Any) -> str:
    target = {} if "external_org_id" in extra else {"company_id": "c1"}
    return await client.billing.track_usage_later(
        **target, feature_code="ai_credit", quantity=quantity, idempotency_key=key, **extra
    )


def wire(*inputs: dict[str, Any]) -> bytes:
    """A batch body as the SDK writes it."""
    body = {str(index): value for index, value in enumerate(inputs)}
    return json.dumps(body, separators=(",", ":")).encode()


def event_input(key: str, quantity: int = 1, company: str = "c1") -> dict[str, Any]:
    return {
        "companyId": company,
        "featureCode": "ai_credit",
        "quantity": quantity,
        "idempotencyKey": key,
    }


# --- the call ------------------------------------------------------------------------------


async def test_track_usage_later_returns_the_key_at_once_and_sends_nothing() -> None:
    server = UsageServer()
    client = make_client(server)
    assert await track(client, "mine") == "mine"
    made = await client.billing.track_usage_later(
        company_id="c1", feature_code="ai_credit", quantity=2, metadata={"model": "gpt-4"}
    )
    assert UUID7.match(made)
    assert server.requests == []
    stats = client.usage_buffer.stats()
    assert (stats.pending, stats.sent) == (2, 0)


@pytest.mark.parametrize(
    ("arguments", "argument", "problem"),
    [
        ({"company_id": "c1", "quantity": 0}, "quantity", "must be a positive integer, got 0"),
        ({"company_id": "c1", "feature_code": " "}, "feature_code", "must not be empty"),
        ({"company_id": "c1", "metadata": {1: "x"}}, "metadata", "keys must be strings"),
        ({"company_id": "c1", "idempotency_key": ""}, "idempotency_key", "must not be empty"),
        ({}, "company_id", "give exactly one of company_id and external_org_id"),
        ({"company_id": None}, "company_id", "give exactly one of company_id and external_org_id"),
        (
            {"company_id": "c1", "external_org_id": "org_1"},
            "company_id",
            "give exactly one of company_id and external_org_id",
        ),
    ],
)
async def test_bad_input_raises_before_anything_is_enqueued(
    arguments: dict[str, Any], argument: str, problem: str
) -> None:
    server = UsageServer()
    client = make_client(server)
    given = {"feature_code": "ai_credit", "quantity": 1, **arguments}
    with pytest.raises(InvalidInputError) as raised:
        await client.billing.track_usage_later(**given)
    assert raised.value.argument == argument
    assert problem in raised.value.problem
    assert client.usage_buffer.stats().pending == 0


async def test_track_usage_shares_the_payload_rules() -> None:
    server = UsageServer()
    client = make_client(server)
    with pytest.raises(InvalidInputError, match="quantity"):
        await client.billing.track_usage(company_id="c1", feature_code="ai_credit", quantity=0)
    result = await client.billing.track_usage(
        company_id="c1", feature_code="ai_credit", quantity=3, idempotency_key="direct"
    )
    assert isinstance(result, UsageResult)
    assert calls(server.requests[0]) == [event_input("direct", 3)]


def test_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_batch"):
        UsageBufferOptions(max_batch=0)
    with pytest.raises(ConfigurationError, match="flush_interval"):
        UsageBufferOptions(flush_interval=-1)
    with pytest.raises(ConfigurationError, match="when_full"):
        UsageBufferOptions(when_full="wait")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on_error"):
        UsageBufferOptions(on_error="log")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="usage_buffer"):
        AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL, usage_buffer=True)  # type: ignore[arg-type]
    defaults = UsageBufferOptions()
    assert (defaults.max_batch, defaults.flush_interval, defaults.max_pending) == (
        100,
        1.0,
        100_000,
    )
    assert (defaults.when_full, defaults.block_timeout, defaults.close_timeout) == (
        "block",
        1.0,
        10.0,
    )


# --- batching -------------------------------------------------------------------------------


async def test_a_batch_leaves_when_max_batch_events_wait() -> None:
    server = UsageServer()
    client = make_client(server, max_batch=3, flush_interval=60)
    buffer = client.usage_buffer
    for index in range(7):
        await track(client, f"k{index}")
    assert await buffer._step() == 0  # two full batches, sent at once
    assert await buffer._step() == 60.0  # one event left: due when it is 60 s old
    assert [str(r.url) for r in server.requests] == [
        f"{BASE_URL}/billing.trackUsage,billing.trackUsage,billing.trackUsage?batch=1"
    ] * 2
    assert sorted(r.content for r in server.requests) == [
        wire(*(event_input(f"k{i}") for i in range(3))),
        wire(*(event_input(f"k{i}") for i in range(3, 6))),
    ]
    assert buffer.stats().pending == 1


class HeldServer(UsageServer):
    """Holds its first request until a second one arrives (or 10 s pass): it answers only
    when two batches are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.second = new_async_event()
        self.overlapped: list[bool] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self.requests) == 1:
            self.overlapped.append(await await_event(self.second, 10))
        else:
            self.second.set()
        return self.answer(request)


async def test_a_batch_that_fills_while_another_is_in_flight_is_sent_at_once() -> None:
    server = HeldServer()
    client = AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        usage_buffer=UsageBufferOptions(max_batch=3, flush_interval=60),
    )
    CLIENTS.append(client)
    buffer = client.usage_buffer
    buffer._manual = True
    for index in range(3):
        await track(client, f"k{index}")

    async def fill_the_next_batch() -> None:
        while not server.requests:  # until the first batch is in flight
            await asleep(0)
        for index in range(3, 6):
            await track(client, f"k{index}")

    sent, _ = await arun_all(buffer._step, fill_the_next_batch)
    assert sent == 0
    assert server.overlapped == [True]  # the second batch left before the first was answered
    assert [keys(r) for r in server.requests] == [["k0", "k1", "k2"], ["k3", "k4", "k5"]]
    assert list(server.counted) == ["k3", "k4", "k5", "k0", "k1", "k2"]
    assert buffer.stats().pending == 0
    assert buffer._sending == 0 and buffer._kick is None


async def test_a_batch_leaves_when_its_oldest_event_waited_flush_interval() -> None:
    time = FakeTime()
    server = UsageServer()
    client = make_client(server, time, flush_interval=2.0)
    buffer = client.usage_buffer
    await track(client, "a")
    await track(client, "b")
    assert await buffer._step() == 2.0
    time.now += 1.5
    assert await buffer._step() == 0.5
    await track(client, "c")
    time.now += 0.5
    assert await buffer._step() == 0
    [request] = server.requests
    assert (
        str(request.url)
        == f"{BASE_URL}/billing.trackUsage,billing.trackUsage,billing.trackUsage?batch=1"
    )
    assert request.content == wire(event_input("a"), event_input("b"), event_input("c"))
    assert await buffer._step() is None  # nothing pending


async def test_one_event_goes_as_a_plain_call_with_its_metadata() -> None:
    server = UsageServer()
    client = make_client(server)
    await track(client, "solo", 5, metadata={"model": "gpt-4", "tokens": 1500})
    assert await client.flush() == 0
    [request] = server.requests
    assert (request.method, str(request.url)) == ("POST", f"{BASE_URL}/billing.trackUsage")
    assert json.loads(request.content) == {
        **event_input("solo", 5),
        "metadata": {"model": "gpt-4", "tokens": 1500},
    }


async def test_batches_never_pass_the_clients_batch_limit() -> None:
    server = UsageServer()
    time = FakeTime()
    client = AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        sleep=time.sleep,
        batching=True,  # BatchOptions(): at most 50 calls per batch
        usage_buffer=UsageBufferOptions(max_batch=100),
    )
    client.usage_buffer._manual = True
    for index in range(120):
        await track(client, f"k{index}")
    assert await client.flush() == 0
    assert sorted(len(calls(r)) for r in server.requests) == [20, 50, 50]


# --- a batch refused as a whole -------------------------------------------------------------


class BatchSizes(httpx.AsyncBaseTransport):
    """Records how many ``billing.trackUsage`` calls each request carries, then lets
    ``inner`` answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "billing.trackUsage" in request.url.path:
            self.sizes.append(request.url.path.count("billing.trackUsage"))
        return await self.inner.handle_async_request(request)


async def test_a_batch_over_the_servers_cap_is_split_counted_and_the_cap_kept() -> None:
    """The local ChatarminOS takes 100 calls a batch ("Batch call exceeds maximum size");
    with max_batch=1000 every event is still counted, only per-event refusals reach
    on_error, and later batches leave at the size that got through."""
    local = LocalChatarminOS()
    company_id = local.add_company("Acme", limits={"ai_credit": None})
    wire = BatchSizes(AsyncLocalTransport(local.engine))
    lost: list[tuple[str, str]] = []
    client = AsyncChatarminOS(
        api_key=local.api_key,
        base_url=local.base_url,
        http_client=httpx.AsyncClient(transport=wire),
        usage_buffer=UsageBufferOptions(
            max_batch=1000,
            flush_interval=3600,
            on_error=lambda event, error: lost.append((event.feature_code, type(error).__name__)),
        ),
    )
    CLIENTS.append(client)
    for _ in range(300):
        await client.billing.track_usage_later(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    assert await client.flush(timeout=60) == 0
    assert wire.sizes == [300, 150, 75, 75, 75, 75]
    local.assert_usage(company_id, "ai_credit", 300)
    assert lost == []

    # Later batches go at the learned size; an event refused on its own still is.
    del wire.sizes[:]
    for _ in range(149):
        await client.billing.track_usage_later(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    await client.billing.track_usage_later(
        company_id=company_id, feature_code="no_such_feature", quantity=1
    )
    assert await client.flush(timeout=60) == 0
    assert sorted(wire.sizes) == [75, 75]
    local.assert_usage(company_id, "ai_credit", 449)
    assert [feature for feature, _ in lost] == ["no_such_feature"]
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.refused, stats.dropped, stats.pending) == (449, 1, 0, 0)


async def test_a_request_too_large_for_a_proxy_is_split_until_it_passes() -> None:
    """413 without a tRPC answer (a proxy's limit) to a batch: sent again in halves."""

    def too_large(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413, html="<html><body>Request Entity Too Large</body></html>")

    server = UsageServer(too_large, too_large)
    errors: list[UsageEvent] = []
    client = make_client(server, max_batch=8, on_error=lambda event, error: errors.append(event))
    for index in range(5):
        await track(client, f"k{index}")
    assert await client.flush() == 0
    sizes = [len(calls(request)) for request in server.track_requests()]
    assert sizes == [5, 2, 1, 1, 1, 1, 1]  # each part at the size in force when it left
    assert sorted(server.counted) == ["k0", "k1", "k2", "k3", "k4"]
    assert errors == []
    assert client.usage_buffer._batch_size == 1
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.refused, stats.retries) == (5, 0, 0)


async def test_every_event_is_acknowledged_once_with_its_final_outcome() -> None:
    """The hook a quota ledger uses: counted, refused and dropped events, each once, with
    the idempotency key; an event sent again is acknowledged only when answered."""

    def refuse_second(request: httpx.Request) -> httpx.Response:
        return server.answer(request, {1: ("PRECONDITION_FAILED", 412)})

    server = UsageServer(
        httpx.Response(503, json=trpc_error("SERVICE_UNAVAILABLE", 503)), refuse_second
    )
    client = make_client(server, max_pending=2, when_full="drop", on_error=lambda e, x: None)
    seen: list[tuple[str, str | None, str, str]] = []

    async def acknowledged(event: UsageEvent, outcome: UsageResult | ChatarminOSError) -> None:
        seen.append(
            (event.idempotency_key, event.company_id, event.feature_code, type(outcome).__name__)
        )

    client.usage_buffer.acknowledged = acknowledged
    await track(client, "a")
    await track(client, "b")
    await track(client, "c")  # no room: dropped
    assert seen == [("c", "c1", "ai_credit", "UsageBufferFullError")]
    assert await client.flush() == 0
    assert seen[1:] == [
        ("a", "c1", "ai_credit", "UsageResult"),
        ("b", "c1", "ai_credit", "PreconditionFailedError"),
    ]


# --- exactly once ---------------------------------------------------------------------------


async def test_a_failed_batch_is_sent_again_with_the_same_keys_after_retry_after() -> None:
    time = FakeTime()
    busy = httpx.Response(503, text="<html>Busy</html>", headers={"retry-after": "7"})
    server = UsageServer(busy)
    client = make_client(server, time)
    for index in range(3):
        await track(client, f"k{index}")
    assert await client.flush(timeout=60) == 0
    first, second = server.requests
    assert first.content == second.content == wire(*(event_input(f"k{i}") for i in range(3)))
    assert time.sleeps == [7.0]  # Retry-After, honoured
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.duplicates, stats.retries, stats.pending) == (3, 0, 3, 0)
    assert stats.last_error is None


async def test_a_failed_batch_stops_both_lanes_until_the_backoff_ends() -> None:
    time = FakeTime()
    busy = httpx.Response(503, json=trpc_error("SERVICE_UNAVAILABLE", 503))
    server = UsageServer(busy)  # the first request fails, the others would be answered
    client = make_client(server, time, max_batch=2, flush_interval=60)
    buffer = client.usage_buffer
    for index in range(6):
        await track(client, f"k{index}")
    assert await buffer._step() == 0
    # The first request to arrive failed; the other lane may have sent a batch meanwhile,
    # but no lane took one after the failure: the third waits for the next round.
    sent = [keys(r) for r in server.requests]
    assert 1 <= len(sent) <= 2
    assert ["k4", "k5"] not in sent
    assert buffer._failures == 1
    assert buffer.stats().pending == 6 - 2 * (len(sent) - 1)
    assert await client.flush(timeout=60) == 0
    assert sorted(server.counted) == [f"k{index}" for index in range(6)]


class PairedServer(UsageServer):
    """Takes requests in pairs, both in flight at once: the first of a pair waits for the
    second (at most 10 s) and fails with a 503, the second is answered."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.partner: AsyncEvent | None = None
        self.pairing = True  # False: answer every request at once

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.pairing:
            self.requests.append(request)
            return self.answer(request)
        with self.lock:
            self.requests.append(request)
            partner, self.partner = self.partner, None
            if partner is None:
                waiting = self.partner = new_async_event()
        if partner is not None:
            partner.set()
            return self.answer(request)
        await await_event(waiting, 10)
        return httpx.Response(503, json=trpc_error("SERVICE_UNAVAILABLE", 503))


async def test_a_round_where_one_lane_fails_still_grows_the_backoff() -> None:
    server = PairedServer()
    client = make_client(server, max_batch=2, flush_interval=60)
    buffer = client.usage_buffer
    for round_number in (1, 2):
        for index in range(2):
            await track(client, f"r{round_number}-{index}")
        if round_number == 1:
            await track(client, "r1-2")
            await track(client, "r1-3")
        assert await buffer._step() == 0
        # One batch answered, the other failed: a failed round, the run goes on.
        assert buffer._failures == round_number
        assert buffer.stats().last_error is not None
    assert len(server.requests) == 4
    assert len(server.counted) == 4  # two batches of two answered, two events left
    assert buffer.stats().pending == 2
    server.pairing = False
    assert await client.flush() == 0
    assert len(server.counted) == 6


async def test_a_lost_answer_is_retried_and_counted_once() -> None:
    server = UsageServer()

    def applied_then_lost(request: httpx.Request) -> httpx.Response:
        server.answer(request)
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    server.plan.append(applied_then_lost)
    time = FakeTime()
    client = make_client(server, time)
    for index in range(4):
        await track(client, f"k{index}")
    assert await client.flush(timeout=60) == 0
    assert [keys(r) for r in server.requests] == [["k0", "k1", "k2", "k3"]] * 2
    assert server.counted == {"k0": 1, "k1": 1, "k2": 1, "k3": 1}
    assert time.sleeps == []  # a blip: sent again at once
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.duplicates, stats.refused) == (4, 4, 0)


async def test_backoff_grows_while_chatarmin_os_keeps_failing() -> None:
    time = FakeTime()
    down = httpx.Response(503, json=trpc_error("SERVICE_UNAVAILABLE", 503))
    server = UsageServer(down, down, down)
    client = make_client(server, time)
    await track(client, "k")
    assert await client.flush(timeout=60) == 0
    assert len(server.requests) == 4
    bases = (0.1, 0.2)  # at once, then exponential, up to 25 % jitter off
    assert all(0.75 * b <= s <= b for s, b in zip(time.sleeps, bases, strict=True))
    assert client.usage_buffer.stats().retries == 3


async def test_refusals_go_to_on_error_once_and_are_never_sent_again() -> None:
    refused: list[tuple[UsageEvent, ChatarminOSError]] = []
    server = UsageServer()
    errors = {
        1: ("PRECONDITION_FAILED", 412),
        2: ("FORBIDDEN", 403),
        3: ("NOT_FOUND", 404),
        4: ("BAD_REQUEST", 400),
        5: ("CONFLICT", 409),
    }
    server.plan.append(lambda request: server.answer(request, errors))
    client = make_client(server, on_error=lambda event, error: refused.append((event, error)))
    for index in range(6):
        await track(client, f"k{index}", index + 1)
    assert await client.flush() == 0
    assert await client.flush() == 0
    assert len(server.requests) == 1
    assert [(e.idempotency_key, e.quantity, type(err)) for e, err in refused] == [
        ("k1", 2, PreconditionFailedError),
        ("k2", 3, PermissionDeniedError),
        ("k3", 4, NotFoundError),
        ("k4", 5, BadRequestError),
        ("k5", 6, ConflictError),
    ]
    event = refused[0][0]
    assert (event.company_id, event.external_org_id, event.feature_code) == (
        "c1",
        None,
        "ai_credit",
    )
    assert event.created_at == T0 and event.metadata is None
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.refused, stats.pending, stats.retries) == (1, 5, 0, 0)


async def test_without_on_error_a_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    server = UsageServer(httpx.Response(412, json=trpc_error("PRECONDITION_FAILED", 412)))
    client = make_client(server)
    await track(client, "over")
    assert await client.flush() == 0
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "'over'" in record.getMessage() and "PreconditionFailedError" in record.getMessage()


async def test_a_rejected_api_key_keeps_the_events_and_says_so_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused: list[Any] = []
    unauthorized = httpx.Response(401, json=trpc_error("UNAUTHORIZED", 401))
    server = UsageServer(unauthorized, unauthorized)
    client = make_client(server, on_error=lambda event, error: refused.append(error))
    await track(client, "k")
    assert await client.flush(timeout=60) == 0  # the third attempt got through
    assert refused == []
    assert server.counted == {"k": 1}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and "check the API key" in errors[0]


async def test_a_proxy_page_with_a_client_error_status_is_retried_not_refused() -> None:
    server = UsageServer(httpx.Response(404, text="<html>Not here</html>"))
    client = make_client(server)
    await track(client, "k")
    assert await client.flush(timeout=60) == 0
    assert server.counted == {"k": 1}
    assert client.usage_buffer.stats().refused == 0


async def test_a_duplicate_answer_counts_as_sent() -> None:
    server = UsageServer()
    server.counted["seen"] = 1
    client = make_client(server)
    await track(client, "seen")
    assert await client.flush() == 0
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.duplicates, stats.refused, stats.pending) == (1, 1, 0, 0)


async def test_each_usage_result_is_reported_to_the_client() -> None:
    server = UsageServer()
    client = make_client(server)
    seen: list[tuple[str, str, int]] = []

    async def answered(company: str, feature: str, result: UsageResult) -> None:
        seen.append((company, feature, result.current_usage))

    client.usage_buffer._answered = answered  # the listener the client gave the buffer
    await track(client, "a")
    await track(client, "b")
    assert await client.flush() == 0
    assert seen == [("c1", "ai_credit", 1), ("c1", "ai_credit", 2)]


# --- external org ids -----------------------------------------------------------------------


async def test_org_ids_are_resolved_when_sent_together_once_per_batch() -> None:
    refused: list[tuple[UsageEvent, ChatarminOSError]] = []
    server = UsageServer(orgs={"org_1": "c_org1"})
    client = make_client(server, on_error=lambda event, error: refused.append((event, error)))
    await track(client, "a", external_org_id="org_1")
    await track(client, "b", external_org_id="org_unlinked")
    await track(client, "c", external_org_id="org_1")
    await track(client, "d")
    assert server.requests == []  # nothing on the caller's path
    assert await client.flush() == 0
    [lookup] = [r for r in server.requests if r.method == "GET"]  # one for the batch's orgs
    assert lookup.url.path.endswith("/companies.getByProductLink,companies.getByProductLink")
    assert json.loads(lookup.url.params["input"]) == {
        "0": {"externalOrgId": "org_1"},
        "1": {"externalOrgId": "org_unlinked"},
    }
    [sent] = server.track_requests()
    assert sent.content == wire(
        event_input("a", company="c_org1"), event_input("c", company="c_org1"), event_input("d")
    )
    [(event, error)] = refused
    assert event.external_org_id == "org_unlinked" and event.company_id is None
    assert type(error) is UnlinkedOrgError and error.external_org_id == "org_unlinked"


async def test_a_failed_org_lookup_keeps_only_its_events() -> None:
    down = httpx.Response(503, text="down")
    server = UsageServer(down, down, down, orgs={"org_1": "c_org1"})  # the lookup's retries too
    time = FakeTime()
    client = make_client(server, time, flush_interval=0)
    await track(client, "a", external_org_id="org_1")
    await track(client, "b")
    assert await client.usage_buffer._step() == 0
    assert len(time.sleeps) == 2  # the client's own retries of the lookup
    assert server.counted == {"b": 1}
    assert client.usage_buffer.stats().pending == 1
    assert await client.flush(timeout=60) == 0
    assert server.counted == {"b": 1, "a": 1}


async def test_one_failed_lookup_of_a_batch_keeps_only_that_orgs_events() -> None:
    def one_lookup_fails(request: httpx.Request) -> httpx.Response:
        ok_one = {"result": {"data": server.company({"externalOrgId": "org_1"})}}
        return httpx.Response(207, json=[ok_one, failure])

    failure = trpc_error("INTERNAL_SERVER_ERROR", 500, "companies.getByProductLink")
    failed = httpx.Response(500, json=failure)
    orgs = {"org_1": "c_org1", "org_2": "c_org2"}
    server = UsageServer(one_lookup_fails, failed, failed, orgs=orgs)  # and both retries
    time = FakeTime()
    client = make_client(server, time, flush_interval=0)
    await track(client, "a", external_org_id="org_1")
    await track(client, "b", external_org_id="org_2")
    assert await client.usage_buffer._step() == 0
    assert len(time.sleeps) == 2  # the client retried org_2's lookup alone, twice
    assert server.counted == {"a": 1}  # org_2's lookup failed: its event waits
    assert client.usage_buffer.stats().pending == 1
    assert await client.flush(timeout=60) == 0
    assert server.counted == {"a": 1, "b": 1}


# --- a full buffer --------------------------------------------------------------------------


async def test_drop_counts_and_reports_every_dropped_event() -> None:
    dropped: list[tuple[UsageEvent, ChatarminOSError]] = []
    server = UsageServer()
    client = make_client(
        server,
        max_pending=2,
        when_full="drop",
        on_error=lambda event, error: dropped.append((event, error)),
    )
    assert [await track(client, key) for key in ("a", "b", "c", "d")] == ["a", "b", "c", "d"]
    assert [(e.idempotency_key, type(err)) for e, err in dropped] == [
        ("c", UsageBufferFullError),
        ("d", UsageBufferFullError),
    ]
    stats = client.usage_buffer.stats()
    assert (stats.pending, stats.dropped) == (2, 2)
    assert await client.flush() == 0
    assert list(server.counted) == ["a", "b"]


async def test_block_waits_for_the_room_the_worker_makes() -> None:
    server = UsageServer()
    client = make_client(server, max_pending=2, max_batch=2, block_timeout=30)
    buffer = client.usage_buffer
    await track(client, "a")
    await track(client, "b")

    async def make_room() -> None:
        while buffer._room is None:  # until the caller below waits for room
            await asleep(0)
        assert await buffer._step() == 0

    key, _ = await arun_all(lambda: track(client, "c"), make_room)
    assert key == "c"
    assert buffer.stats().dropped == 0
    assert await client.flush() == 0
    assert list(server.counted) == ["a", "b", "c"]


async def test_block_drops_when_no_room_comes_in_time(caplog: pytest.LogCaptureFixture) -> None:
    server = UsageServer()
    client = make_client(server, max_pending=1, block_timeout=0.05)
    await track(client, "a")
    assert await track(client, "b") == "b"  # waited 50 ms, then dropped: never raised
    assert client.usage_buffer.stats().dropped == 1
    assert "Usage buffer full" in caplog.text


# --- flush and close ------------------------------------------------------------------------


async def test_flush_with_nothing_pending_returns_at_once() -> None:
    client = make_client(UsageServer())
    assert await client.flush() == 0
    assert await client.flush(timeout=0) == 0
    with pytest.raises(InvalidInputError, match="timeout"):
        await client.flush(timeout=-1)


async def test_flush_gives_up_after_its_timeout_and_says_what_is_pending() -> None:
    time = FakeTime()
    down = httpx.Response(503, text="<html>down</html>", headers={"retry-after": "1"})
    server = UsageServer(*[down] * 100)
    client = make_client(server, time)
    for key in ("a", "b", "c"):
        await track(client, key)
    assert await client.flush(timeout=0) == 3
    assert server.requests == []
    assert await client.flush(timeout=5) == 3
    assert len(server.requests) == 5  # at 0, 1, 2, 3 and 4 s
    assert time.sleeps == [1.0] * 5
    stats = client.usage_buffer.stats()
    assert stats.pending == 3 and stats.oldest_pending_age == 5.0
    assert stats.last_error is not None and "InternalServerError: 503" in stats.last_error


async def test_close_flushes_within_its_bound_and_is_idempotent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = FakeTime()
    down = httpx.Response(503, text="down", headers={"retry-after": "1"})
    server = UsageServer(*[down] * 100)
    client = make_client(server, time, close_timeout=2.5)
    await track(client, "a")
    await client.aclose()
    assert len(server.requests) == 3  # at 0, 1 and 2 s; the next would be past 2.5 s
    assert "1 event(s) not sent within 2.5 s of closing" in caplog.text
    await client.aclose()
    assert len(server.requests) == 3
    with pytest.raises(ChatarminOSError, match="closed"):
        await track(client, "late")


async def test_close_sends_what_is_pending() -> None:
    server = UsageServer()
    client = make_client(server, flush_interval=3600)
    await track(client, "a")
    await track(client, "b")
    await client.aclose()
    assert server.counted == {"a": 1, "b": 1}


async def test_stats_tell_the_age_of_the_oldest_pending_event() -> None:
    time = FakeTime()
    client = make_client(UsageServer(), time)
    assert client.usage_buffer.stats() == UsageBufferStats(0, 0, 0, 0, 0, 0, None, None)
    await track(client, "a")
    time.now += 3
    await track(client, "b")
    assert client.usage_buffer.stats().oldest_pending_age == 3.0


async def test_every_round_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chatarmin_os")
    server = UsageServer()
    server.counted["a"] = 1
    client = make_client(server)
    await track(client, "a")
    await track(client, "b")
    assert await client.flush() == 0
    assert "Usage buffer: batch of 2: 2 sent (1 duplicates), 0 refused, 0 to retry" in caplog.text
    assert API_KEY not in caplog.text


# --- copies ---------------------------------------------------------------------------------


async def test_copies_share_the_buffer_unless_they_talk_to_another_product() -> None:
    server = UsageServer()
    client = make_client(server)
    patient = client.with_options(timeout=120.0)
    assert patient.usage_buffer is client.usage_buffer
    other = client.with_options(api_key="os_sk_other_product")
    assert other.usage_buffer is not client.usage_buffer
    other.usage_buffer._manual = True
    await track(patient, "a")
    await track(other, "b")
    assert await client.flush() == 0  # flushes every buffer of the family
    assert [(r.headers["authorization"], keys(r)) for r in server.requests] == [
        (f"Bearer {API_KEY}", ["a"]),
        ("Bearer os_sk_other_product", ["b"]),
    ]


# --- the worker -----------------------------------------------------------------------------


async def test_the_worker_starts_on_the_first_event_and_sends_on_flush() -> None:
    server = UsageServer()
    client = make_client(server, manual=False, flush_interval=3600)
    buffer = client.usage_buffer
    assert buffer._worker is None
    for index in range(5):
        await track(client, f"k{index}")
    assert buffer._worker is not None and buffer._worker.alive()
    assert await client.flush(timeout=30) == 0
    assert [keys(r) for r in server.requests] == [[f"k{i}" for i in range(5)]]
    await client.aclose()


async def test_the_worker_sends_a_full_batch_without_a_flush() -> None:
    server = UsageServer()
    client = make_client(server, manual=False, max_batch=4, flush_interval=3600)
    for index in range(4):
        await track(client, f"k{index}")
    assert await client.flush(timeout=30) == 0
    assert [keys(r) for r in server.requests] == [["k0", "k1", "k2", "k3"]]
    await client.aclose()


async def test_fault_injection_counts_every_event_exactly_once() -> None:
    """Thousands of events through answers lost after the server applied them, 503s, HTML
    pages and timeouts: the server ends at exactly the number sent, nothing is raised."""
    local = LocalChatarminOS()
    company_id = local.add_company("Acme", limits={"ai_credit": None})
    chaos = Chaos(AsyncLocalTransport(local.engine), seed=12)
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    client = AsyncChatarminOS(
        api_key=local.api_key,
        base_url=local.base_url,
        http_client=httpx.AsyncClient(transport=chaos),
        sleep=no_wait,
        usage_buffer=UsageBufferOptions(max_batch=100, flush_interval=3600),
    )
    total = 3000
    for _ in range(total):
        await client.billing.track_usage_later(
            company_id=company_id, feature_code="ai_credit", quantity=1
        )
    assert await client.flush(timeout=120) == 0
    await client.aclose()
    local.assert_usage(company_id, "ai_credit", total)
    events = local.usage_events(company_id)
    assert len({event["idempotencyKey"] for event in events}) == total
    stats = client.usage_buffer.stats()
    assert (stats.sent, stats.refused, stats.dropped, stats.pending) == (total, 0, 0, 0)
    assert stats.duplicates > 0 and stats.retries > 0
    assert set(chaos.fired) == {"lost", "503", "html 502", "html 200", "timeout"}
    local.close()


class Chaos(httpx.AsyncBaseTransport):
    """Fails ``billing.trackUsage`` requests at random (seeded), before or after applying."""

    def __init__(self, inner: httpx.AsyncBaseTransport, seed: int) -> None:
        self.inner = inner
        self.random = random.Random(seed)
        self.fired: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "billing.trackUsage" not in request.url.path:
            return await self.inner.handle_async_request(request)
        roll = self.random.random()
        if roll < 0.15:
            self.fired.append("lost")
            await (await self.inner.handle_async_request(request)).aclose()
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        if roll < 0.25:
            self.fired.append("503")
            body = trpc_error("SERVICE_UNAVAILABLE", 503)
            return httpx.Response(503, json=body, headers={"retry-after": "0"})
        if roll < 0.32:
            self.fired.append("html 502")
            return httpx.Response(502, html="<html><body>Bad gateway</body></html>")
        if roll < 0.38:
            self.fired.append("html 200")
            await (await self.inner.handle_async_request(request)).aclose()
            return httpx.Response(200, html="<html><body>Captive portal</body></html>")
        if roll < 0.42:
            self.fired.append("timeout")
            await (await self.inner.handle_async_request(request)).aclose()
            raise httpx.ReadTimeout("timed out", request=request)
        return await self.inner.handle_async_request(request)


def test_a_buffer_is_made_on_first_use_with_the_defaults() -> None:
    client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL)
    assert client._usage_buffers == {}
    buffer = client.usage_buffer
    assert isinstance(buffer, AsyncUsageBuffer)
    assert buffer.options == UsageBufferOptions()
    assert "memory" in repr(buffer)


# --- the spool ------------------------------------------------------------------------------


def spool_rows(path: Any) -> list[tuple[str, int, Any]]:
    """(idempotency key, attempts, owner) of every row in a spool file, in order."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT payload, attempts, owner FROM usage_spool ORDER BY id"
        ).fetchall()
    return [
        (json.loads(text)["json"]["idempotencyKey"], attempts, owner)
        for text, attempts, owner in rows
    ]


async def test_a_local_client_with_a_spool_sends_through_its_local_transport(tmp_path: Any) -> None:
    """``local()`` gives the client its transport after construction, where a spool already
    made the buffer (to resume): the buffer's sending copy is made later, with it."""
    local = LocalChatarminOS()
    company_id = local.add_company("Acme", limits={"ai_credit": None})
    client = AsyncChatarminOS.local(
        local.engine,
        api_key=local.api_key,
        usage_buffer=UsageBufferOptions(spool=str(tmp_path / "usage.db"), flush_interval=3600),
    )
    CLIENTS.append(client)
    await client.billing.track_usage_later(
        company_id=company_id, feature_code="ai_credit", quantity=2
    )
    assert await client.flush(timeout=30) == 0
    local.assert_usage(company_id, "ai_credit", 2)


async def test_the_spool_holds_each_event_before_track_usage_later_returns(tmp_path: Any) -> None:
    spool = tmp_path / "usage.db"
    client = make_client(UsageServer(), spool=str(spool))
    await track(client, "a")
    assert spool_rows(spool) == [("a", 0, None)]
    await track(client, "b", metadata={"at": "2024-01-15T10:30:00Z"})
    assert [row[0] for row in spool_rows(spool)] == ["a", "b"]
    assert client.usage_buffer.stats().pending == 2


async def test_a_new_client_sends_what_a_crashed_one_left_in_the_spool(tmp_path: Any) -> None:
    from datetime import datetime, timezone

    spool = str(tmp_path / "usage.db")
    server = UsageServer()
    crashed = make_client(server, spool=spool)
    when = datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)
    await track(crashed, "a", metadata={"at": when, "n": [1, 2]})
    await track(crashed, "b", 2)
    # ``crashed`` is never closed nor flushed: a process that died.
    restarted = make_client(server, spool=spool)
    assert restarted.usage_buffer.stats().pending == 2
    assert await restarted.flush() == 0
    [request] = server.requests
    assert request.content == wire(
        {**event_input("a"), "metadata": {"at": "2024-01-15T10:30:00.000Z", "n": [1, 2]}},
        event_input("b", 2),
    )
    assert spool_rows(spool) == []


async def test_a_client_made_over_a_spool_with_leftovers_starts_sending_them_at_once(
    tmp_path: Any,
) -> None:
    spool = str(tmp_path / "usage.db")
    server = UsageServer()
    crashed = make_client(server, spool=spool)
    await track(crashed, "a")
    await track(crashed, "b")
    restarted = make_client(server, spool=spool, manual=False)  # nothing enqueued by it
    worker = restarted.usage_buffer._worker
    assert worker is not None and worker.alive()  # started by the client, for the spool
    assert await restarted.flush(timeout=30) == 0  # the worker's: waits for its answer
    assert [keys(r) for r in server.requests] == [["a", "b"]]
    assert spool_rows(spool) == []


async def test_the_spool_keeps_what_was_not_answered_and_drops_refusals(tmp_path: Any) -> None:
    spool = str(tmp_path / "usage.db")
    refused: list[str] = []
    server = UsageServer()
    server.plan.append(lambda request: server.answer(request, {1: ("FORBIDDEN", 403)}))
    server.plan.append(httpx.Response(503, text="down", headers={"retry-after": "1"}))
    client = make_client(
        server, spool=spool, on_error=lambda event, error: refused.append(event.idempotency_key)
    )
    for key in ("a", "b", "c"):
        await track(client, key)
    assert await client.usage_buffer._step() is not None  # not due yet
    client.usage_buffer._flush_upto = 2  # as a flush would ask, for "a" and "b" only
    assert await client.usage_buffer._step() == 0  # a sent, b refused, c sent along
    assert refused == ["b"] and server.counted == {"a": 1, "c": 1}
    assert spool_rows(spool) == []
    await track(client, "d")
    client.usage_buffer._flush_upto = 4
    assert await client.usage_buffer._step() == 0  # 503: kept, one attempt more, released
    assert spool_rows(spool) == [("d", 1, None)]
    assert client.usage_buffer.stats().last_error is not None


async def test_a_spool_file_serves_each_api_key_its_own_rows(tmp_path: Any) -> None:
    spool = str(tmp_path / "usage.db")
    server = UsageServer()
    client = make_client(server, spool=spool)
    other = client.with_options(api_key="os_sk_other_product")
    other.usage_buffer._manual = True
    await track(client, "mine")
    await track(other, "theirs")
    assert client.usage_buffer.stats().pending == 1
    assert await client.usage_buffer.flush() == 0
    assert [keys(r) for r in server.requests] == [["mine"]]
    assert [row[0] for row in spool_rows(spool)] == ["theirs"]


async def test_rows_leased_by_a_live_process_wait_those_of_a_dead_one_are_taken(
    tmp_path: Any,
) -> None:
    import socket
    import sqlite3

    spool = str(tmp_path / "usage.db")
    server = UsageServer()
    client = make_client(server, spool=spool, flush_interval=0)
    for key in ("alive", "dead"):
        await track(client, key)
    host = socket.gethostname()
    alive = f"{host}|{os.getppid()}|token"  # our parent: certainly running
    dead = f"{host}|{2**22 + 12345}|token"  # a pid no process has
    with sqlite3.connect(spool) as conn:
        for key, owner in (("alive", alive), ("dead", dead)):
            conn.execute(
                "UPDATE usage_spool SET owner = ?, lease_until = ? "
                "WHERE json_extract(payload, '$.json.idempotencyKey') = ?",
                (owner, T0 + 600, key),
            )
    assert await client.usage_buffer._step() == 0
    assert server.counted == {"dead": 1}
    assert await client.usage_buffer._step() == 0.5  # look at the live one's rows again soon
    assert [row[0] for row in spool_rows(spool)] == ["alive"]


async def test_closing_with_chatarmin_os_down_keeps_the_rows_for_the_next_process(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spool = str(tmp_path / "usage.db")
    down = httpx.Response(503, text="down", headers={"retry-after": "1"})
    server = UsageServer(*[down] * 10)
    client = make_client(server, spool=spool, close_timeout=1.5)
    await track(client, "a")
    await client.aclose()
    assert "stay in the spool" in caplog.text
    assert spool_rows(spool) == [("a", 2, None)]


async def test_a_full_spool_drops_by_its_row_count(tmp_path: Any) -> None:
    spool = str(tmp_path / "usage.db")
    client = make_client(UsageServer(), spool=spool, max_pending=2, when_full="drop")
    for key in ("a", "b", "c"):
        await track(client, key)
    assert [row[0] for row in spool_rows(spool)] == ["a", "b"]
    assert client.usage_buffer.stats().dropped == 1


async def test_a_spool_that_cannot_be_opened_is_an_sdk_error(tmp_path: Any) -> None:
    client = make_client(UsageServer(), spool=str(tmp_path / "missing" / "usage.db"))
    with pytest.raises(ChatarminOSError, match="usage spool"):
        await track(client, "a")
