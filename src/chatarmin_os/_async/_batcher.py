"""Coalescing calls made at the same time into tRPC batch requests (``batching=``).

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_batcher.py``.

A call joins the queue of its kind (queries and mutations never share a batch) and waits.
The first call of an empty queue starts a flush in the background (a task of the running
loop; a thread in the blocking client) that waits ``BatchOptions.wait`` (by default just
until the event loop runs again), takes every queued call, splits them into batches within
``max_items`` and ``max_url_length`` and sends those at once, each through the client's
request loop (the ``send`` it was given: retries, errors per call). Calls queued meanwhile make the next batch. A
query identical to one queued or in flight (same path, same input) is not sent again: it
waits for the same answer.

Under trio, background work needs the client's nursery (``async with client:``); without
it, the first call of a batch sends the batch itself.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

from .. import _fork
from .._batching import BatchOptions, Call, plan_batches
from .._concurrency import AsyncBackground, AsyncWork, asleep, current_loop, new_async_event
from .._exceptions import ChatarminOSError
from .._wire import Kind

__all__ = ["AsyncBatcher"]

_NAME = "chatarmin-os batch"


class AsyncBatcher:
    """The queues of one client; :meth:`submit` a prepared call and wait for its outcome.

    ``send`` sends one batch (or call) of one kind until each call has an outcome (the
    client's request loop); ``background`` is where flushes run; ``base_url_length`` bounds
    a query batch's URL.
    """

    def __init__(
        self,
        options: BatchOptions,
        send: Callable[[list[Call]], Awaitable[None]],
        background: AsyncBackground,
        base_url_length: int,
    ) -> None:
        self._send_batch = send
        self._background = background
        self._base_url_length = base_url_length
        self.options = options
        """The batching options in force."""
        self._lock = threading.Lock()
        self._reset()
        # Seams for tests: what a flush waits for before taking the queue, and a hook
        # called (under the lock) for every call submitted, queued or joining another.
        self._window: AsyncWork = lambda: asleep(options.wait)
        self._on_submit: Callable[[Call], None] | None = None
        _fork.register(self)

    def _reset(self) -> None:
        self._queues: dict[Kind, list[Call]] = {"query": [], "mutation": []}
        self._flushing: dict[Kind, bool] = {"query": False, "mutation": False}
        self._in_flight: dict[tuple[str, str | None], Call] = {}
        self._loop = current_loop()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._reset()  # the parent's queued calls are the parent's to send

    async def submit(self, call: Call) -> Call:
        """Queue ``call`` (or join the identical query in flight); return it once answered."""
        start = False
        with self._lock:
            if self._loop is not current_loop():
                self._reset()  # what was queued belonged to tasks of a loop that is gone
            shared = self._in_flight.get(call.key) if call.key is not None else None
            if shared is not None:
                call = shared
            else:
                call.done = new_async_event()
                if call.key is not None:
                    self._in_flight[call.key] = call
                self._queues[call.kind].append(call)
                if not self._flushing[call.kind]:
                    self._flushing[call.kind] = start = True
            if self._on_submit is not None:
                self._on_submit(call)
        if start:
            kind = call.kind
            background = self._background
            if background.can_start():
                background.start(lambda: self._flush(kind), _NAME)
            else:
                await self._flush(kind)
        await call.done.wait()
        return call

    async def _flush(self, kind: Kind) -> None:
        await self._window()  # really wait (not the retry sleeper): let others join
        while True:
            with self._lock:
                calls, self._queues[kind] = self._queues[kind], []
                if not calls:
                    self._flushing[kind] = False
                    return
            batches = plan_batches(calls, self.options, self._base_url_length)
            background = self._background
            for batch in batches[:-1]:
                if background.can_start():
                    background.start(lambda batch=batch: self._send(batch), _NAME)  # type: ignore[misc]
                else:
                    await self._send(batch)
            await self._send(batches[-1])

    async def _send(self, batch: list[Call]) -> None:
        try:
            await self._send_batch(batch)
        finally:
            with self._lock:
                for call in batch:
                    if call.key is not None and self._in_flight.get(call.key) is call:
                        del self._in_flight[call.key]
            for call in batch:
                if not call.finished:  # cancelled (the client closed) or a bug: never hang
                    call.fail(
                        ChatarminOSError("The call was not answered: the client closed first."),
                        None,
                    )
                call.done.set()
