"""Helpers for tests of batching (generated into ``tests/support/_sync`` like the tests)."""

from __future__ import annotations

from chatarmin_os import AsyncChatarminOS
from chatarmin_os._concurrency import new_async_event


def hold(client: AsyncChatarminOS, calls: int) -> None:
    """Keep the client's next batch open until ``calls`` calls have been made.

    Calls made at the same time then travel together whatever the scheduling (threads in
    the blocking client): the batches a test sees are exact.
    """
    batcher = client._batcher
    assert batcher is not None
    # Make every namespace now: the first access imports its module, which could let a
    # later call overtake an earlier one (threads in the blocking client).
    for name in ("companies", "contacts", "features", "billing", "tiers", "subscriptions", "links"):
        getattr(client, name)
    ready = new_async_event()
    made = 0

    def on_submit(call: object) -> None:
        nonlocal made
        made += 1
        if made == calls:
            ready.set()

    async def window() -> None:
        await ready.wait()

    batcher._on_submit = on_submit
    batcher._window = window
