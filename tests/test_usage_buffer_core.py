"""The usage buffer's shared parts: what an error means for an event, the memory store's
order, leases, the payload builder, and the public types."""

from __future__ import annotations

import copy
import gc
import pickle

import httpx
import pytest

from chatarmin_os import (
    APIConnectionError,
    APIResponseValidationError,
    AuthenticationError,
    BadRequestError,
    ChatarminOSError,
    ConflictError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    UnlinkedOrgError,
    UnprocessableEntityError,
    UsageBufferFullError,
    UsageEvent,
)
from chatarmin_os._base import product_key
from chatarmin_os._usage.memory_store import MemoryStore
from chatarmin_os._usage.policy import backoff_delay, classify
from chatarmin_os._usage.policy import describe_failure as describe
from chatarmin_os._usage.spool import lease_seconds
from chatarmin_os._validate import usage_payload
from tests.support.helpers import API_KEY

REQUEST = httpx.Request("POST", "https://os.example.test/api/v1/billing.trackUsage")


def status_error(cls: type, status: int, code: str | None) -> ChatarminOSError:
    response = httpx.Response(status, request=REQUEST)
    error: ChatarminOSError = cls("no", response=response, path="billing.trackUsage", code=code)
    return error


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (status_error(PreconditionFailedError, 412, "PRECONDITION_FAILED"), "refused"),
        (status_error(PermissionDeniedError, 403, "FORBIDDEN"), "refused"),
        (status_error(NotFoundError, 404, "NOT_FOUND"), "refused"),
        (status_error(BadRequestError, 400, "BAD_REQUEST"), "refused"),
        (status_error(ConflictError, 409, "CONFLICT"), "refused"),
        (status_error(UnprocessableEntityError, 422, "UNPROCESSABLE_CONTENT"), "refused"),
        (InvalidInputError("metadata", "bad"), "refused"),
        (UnlinkedOrgError("org_1"), "refused"),
        (status_error(AuthenticationError, 401, "UNAUTHORIZED"), "auth"),
        (status_error(RateLimitError, 429, "TOO_MANY_REQUESTS"), "retry"),
        (status_error(InternalServerError, 503, "SERVICE_UNAVAILABLE"), "retry"),
        (status_error(InternalServerError, 502, None), "retry"),  # a proxy's page
        (status_error(NotFoundError, 404, None), "retry"),  # a proxy's page, not ChatarminOS
        (status_error(BadRequestError, 408, "TIMEOUT"), "retry"),
        (APIConnectionError("Connection refused", request=REQUEST), "retry"),
        (
            APIResponseValidationError(
                "not JSON", path="billing.trackUsage", response=httpx.Response(200)
            ),
            "retry",
        ),
        (ChatarminOSError("This client is closed"), "retry"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_what_an_error_means_for_an_event(error: ChatarminOSError, outcome: str) -> None:
    assert classify(error) == outcome


def test_describe_says_a_batchs_procedure_once_and_stays_short() -> None:
    paths = ",".join(["billing.trackUsage"] * 100)
    error = APIConnectionError(
        f"Connection error calling {paths}: ConnectError: refused", request=REQUEST
    )
    assert describe(error) == (
        "APIConnectionError: Connection error calling billing.trackUsage x100: "
        "ConnectError: refused"
    )
    assert len(describe(ChatarminOSError("x" * 5000))) == 300


def test_the_product_key_naming_spool_rows_and_cache_keys_keeps_no_key() -> None:
    dest = product_key("https://os.example.test/api/v1/", API_KEY)
    assert len(dest) == 24 and API_KEY not in dest
    assert dest != product_key("https://os.example.test/api/v1/", "os_sk_other")
    assert dest != product_key("https://other.example.test/api/v1/", API_KEY)


def test_a_lease_outlasts_a_request() -> None:
    assert lease_seconds(30.0) == 90.0
    assert lease_seconds(5.0) == 60.0
    assert lease_seconds(httpx.Timeout(30.0, connect=5.0)) == 3 * (5 + 30 + 30 + 30)
    assert lease_seconds(None) == 600.0
    assert lease_seconds(httpx.Timeout(None)) == 600.0


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [(1, 0.0, 0.0), (2, 0.075, 0.1), (3, 0.15, 0.2), (5, 0.6, 0.8), (12, 6.0, 8.0), (64, 6.0, 8.0)],
)
def test_the_backoff_grows_from_a_blip_to_8_seconds(failures: int, low: float, high: float) -> None:
    for _ in range(20):  # the jitter: up to 25 % less
        assert low <= backoff_delay(failures, None) <= high


@pytest.mark.parametrize("header", [{"retry-after": "3600"}, {"retry-after": "soon"}])
def test_a_retry_after_that_cannot_be_used_does_not_stop_the_backoff_growing(
    header: dict[str, str],
) -> None:
    assert 0.6 <= backoff_delay(5, httpx.Headers(header)) <= 0.8  # as without a header
    assert backoff_delay(5, httpx.Headers({"retry-after": "7"})) == 7.0
    assert backoff_delay(1, httpx.Headers({"retry-after-ms": "250"})) == 0.25


def payload(key: str) -> dict[str, object]:
    return usage_payload(company_id="c1", feature_code="ai_credit", quantity=1, idempotency_key=key)


def test_the_memory_store_keeps_seq_order_whichever_batch_comes_back_first() -> None:
    store = MemoryStore()
    for index in range(6):
        store.add(payload(f"k{index}"), 100.0)
    first = store.take(100.0, 2, 60, upto=6)
    second = store.take(100.0, 2, 60, upto=6)
    assert [e.idempotency_key for e in first + second] == ["k0", "k1", "k2", "k3"]
    store.settle([], first)  # the first batch fails first ...
    store.settle([], second)  # ... then the second: both go back, in order
    assert store.unresolved_upto(3) == 3
    again = store.take(100.0, 6, 60, upto=6)
    assert [(e.idempotency_key, e.attempts) for e in again] == [
        ("k0", 1),
        ("k1", 1),
        ("k2", 1),
        ("k3", 1),
        ("k4", 0),
        ("k5", 0),
    ]
    store.settle(again[:5], again[5:])
    assert (store.pending(), store.unresolved_upto(5), store.unresolved_upto(6)) == (1, 0, 1)


def test_waiting_events_are_left_alone_by_the_garbage_collector() -> None:
    # With ChatarminOS down, 100,000s of events wait: if the collector tracked each, every
    # full collection would scan them all (a pause of tens of ms in the enqueueing thread).
    store = MemoryStore()
    for index in range(1_000):
        store.add(payload(f"k{index}"), 100.0)
    store.settle([], store.take(100.0, 10, 60, upto=0))  # some came back from a failure
    gc.collect()
    assert store.pending() == 1_000
    assert not any(gc.is_tracked(item) for item in store._payloads)
    assert not any(gc.is_tracked(row) for row in store._rows)


def test_the_payload_builder_is_the_one_track_usage_uses() -> None:
    assert usage_payload(
        external_org_id="org_1",
        feature_code="ai_credit",
        quantity=2,
        idempotency_key="k",
        metadata={"a": 1},
    ) == {
        "externalOrgId": "org_1",
        "featureCode": "ai_credit",
        "quantity": 2,
        "idempotencyKey": "k",
        "metadata": {"a": 1},
    }
    with pytest.raises(InvalidInputError, match="company_id"):
        usage_payload(feature_code="ai_credit", quantity=1)


def test_an_event_reads_well_and_the_errors_pickle() -> None:
    event = UsageEvent(payload("k1"), 1.0, 7)
    assert repr(event) == (
        "UsageEvent(company_id='c1', feature_code='ai_credit', quantity=1, idempotency_key='k1')"
    )
    unlinked = pickle.loads(pickle.dumps(UnlinkedOrgError("org_1")))
    assert (type(unlinked), unlinked.external_org_id) == (UnlinkedOrgError, "org_1")
    assert str(copy.copy(unlinked)) == "No company is linked to the external org id 'org_1'."
    full = pickle.loads(pickle.dumps(UsageBufferFullError("full")))
    assert isinstance(full, ChatarminOSError) and str(full) == "full"


def test_the_integrations_gates_hand_usage_to_a_configured_buffer() -> None:
    import asyncio

    from chatarmin_os import AsyncChatarminOS, ChatarminOS, UsageBufferOptions
    from chatarmin_os._async._gate import track as atrack
    from chatarmin_os._sync._gate import track
    from chatarmin_os.testing import LocalChatarminOS

    local = LocalChatarminOS()
    company_id = local.add_company(external_org_id="org_1", limits={"ai_credit": None})
    options = UsageBufferOptions(flush_interval=3600)
    with ChatarminOS.local(local.engine, usage_buffer=options) as client:
        track(client, "ai_credit", "org_1", 2, "ai_credit:req-1")
        assert client.usage_buffer.stats().pending == 1  # enqueued, not sent
        track(client, "ai_credit", "org_unknown", 1, "ai_credit:req-2")  # refused when sent
    assert client.usage_buffer.stats().refused == 1

    async def main() -> None:
        async with AsyncChatarminOS.local(local.engine, usage_buffer=options) as aclient:
            await atrack(aclient, "ai_credit", "org_1", 3, "ai_credit:req-3")
            assert aclient.usage_buffer.stats().pending == 1

    asyncio.run(main())
    assert [(e["quantity"], e["idempotencyKey"]) for e in local.usage_events(company_id)] == [
        (2, "ai_credit:req-1"),
        (3, "ai_credit:req-3"),
    ]
    with ChatarminOS.local(local.engine) as plain:  # no buffer configured: tracked at once
        track(plain, "ai_credit", "org_1", 1, "ai_credit:req-4")
        local.assert_usage(company_id, "ai_credit", 6)
    local.close()
