"""The async client's usage buffer shares its event loop with the caller: a caller that
enqueues in a tight loop (never awaiting anything else) still lets the worker task send, once
per full batch, under asyncio and trio alike (without that, nothing would be sent before the
loop ends)."""

from __future__ import annotations

import asyncio
import json

import httpx
import trio

from chatarmin_os import AsyncChatarminOS, UsageBufferOptions
from tests.support.canned import UNLIMITED_USAGE_ANSWER
from tests.support.helpers import API_KEY, BASE_URL


class Recorder:
    """Answers every batch; records how many events the caller had enqueued by then."""

    def __init__(self) -> None:
        self.enqueued = 0
        self.seen_at: list[int] = []
        self.sizes: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        size = len(json.loads(request.content))
        self.seen_at.append(self.enqueued)
        self.sizes.append(size)
        return httpx.Response(200, json=[UNLIMITED_USAGE_ANSWER] * size)


async def enqueue_in_a_tight_loop(recorder: Recorder) -> AsyncChatarminOS:
    client = AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
        usage_buffer=UsageBufferOptions(max_batch=10, flush_interval=3600),
    )
    for _ in range(50):
        await client.billing.track_usage_later(
            company_id="c1", feature_code="ai_credit", quantity=1
        )
        recorder.enqueued += 1
    return client


def assert_sent_while_enqueueing(sent: int, recorder: Recorder) -> None:
    # Batches left while the caller was still enqueueing (the first one at the latest when
    # the 20th event was put: a worker needs a few turns to send one); nothing was lost.
    assert sent >= 2
    assert recorder.seen_at[0] < 20
    assert sum(recorder.sizes) == 50


async def test_the_worker_sends_while_the_caller_enqueues_under_asyncio() -> None:
    recorder = Recorder()
    async with await enqueue_in_a_tight_loop(recorder) as client:
        sent_while_enqueueing = len(recorder.sizes)
        assert await client.flush(timeout=10) == 0
    assert_sent_while_enqueueing(sent_while_enqueueing, recorder)


def test_the_worker_sends_while_the_caller_enqueues_under_trio() -> None:
    recorder = Recorder()

    async def main() -> int:
        client = AsyncChatarminOS(
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(recorder)),
            usage_buffer=UsageBufferOptions(max_batch=10, flush_interval=3600),
        )
        async with client:
            for _ in range(50):
                await client.billing.track_usage_later(
                    company_id="c1", feature_code="ai_credit", quantity=1
                )
                recorder.enqueued += 1
            sent = len(recorder.sizes)
            assert await client.flush(timeout=10) == 0
        return sent

    assert_sent_while_enqueueing(trio.run(main), recorder)
    assert sum(recorder.sizes) == 50


def test_a_loop_ending_mid_batch_leaves_the_buffer_ready_for_the_next_loop() -> None:
    """The first loop ends with a batch in flight (never answered) and the second lane
    waiting for the next one: both are cancelled, nothing of that loop is left behind (no
    batch counted as in flight, no event to wait on), and the next loop sends everything."""
    import anyio

    answered: list[str] = []
    hold = True

    async def handler(request: httpx.Request) -> httpx.Response:
        if hold:
            await anyio.sleep_forever()  # the first loop ends while this waits
        body = json.loads(request.content)
        if "batch=1" not in str(request.url):  # one event goes as a plain call
            answered.append(body["idempotencyKey"])
            return httpx.Response(200, json=UNLIMITED_USAGE_ANSWER)
        answered.extend(body[str(index)]["idempotencyKey"] for index in range(len(body)))
        return httpx.Response(200, json=[UNLIMITED_USAGE_ANSWER] * len(body))

    client = AsyncChatarminOS(
        api_key=API_KEY,
        base_url=BASE_URL,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        usage_buffer=UsageBufferOptions(max_batch=2, flush_interval=3600),
    )
    buffer = client.usage_buffer

    async def track(key: str) -> None:
        await client.billing.track_usage_later(
            company_id="c1", feature_code="ai_credit", quantity=1, idempotency_key=key
        )

    async def first_loop() -> None:
        await track("a")
        await track("b")  # a full batch: the worker sends it (held), a second lane waits
        while buffer._kick is None:
            await anyio.sleep(0)

    asyncio.run(first_loop())
    assert buffer._kick is None and buffer._sending == 0
    hold = False

    async def second_loop() -> int:
        await track("c")
        left = await client.flush(timeout=10)
        await client.aclose()
        return left

    assert asyncio.run(second_loop()) == 0
    assert sorted(answered) == ["a", "b", "c"]
