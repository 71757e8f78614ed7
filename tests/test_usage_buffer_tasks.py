"""The async client's usage buffer shares its event loop with the caller: a caller that
enqueues in a tight loop (never awaiting anything else) still lets the worker task send, once
per full batch, under asyncio and trio alike (without that, nothing would be sent before the
loop ends)."""

from __future__ import annotations

import json

import httpx
import trio

from chatarmin_os import AsyncChatarminOS, UsageBufferOptions
from tests.helpers import API_KEY, BASE_URL

USAGE = {
    "featureCode": "ai_credit",
    "currentUsage": 1,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
    "billableQuantity": 1,
    "isAtLimit": False,
    "duplicate": False,
}


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
        return httpx.Response(200, json=[{"result": {"data": USAGE}}] * size)


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
