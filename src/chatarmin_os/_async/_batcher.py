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

from collections.abc import Awaitable, Callable

from .._batching import Call
from .._client.batcher import BatcherCore
from .._concurrency import AsyncBackground, AsyncWork, asleep, current_loop, new_async_event
from .._wire import Kind

__all__ = ["AsyncBatcher"]

_NAME = "chatarmin-os batch"


class AsyncBatcher(BatcherCore):
    """The queues of one client; :meth:`submit` a prepared call and wait for its outcome.

    Made with ``(options, send, background, base_url_length)``, see
    :class:`~chatarmin_os._client.batcher.BatcherCore`.
    """

    _current_loop = staticmethod(current_loop)
    _wait = staticmethod(asleep)
    _send_batch: Callable[[list[Call]], Awaitable[None]]
    _background: AsyncBackground
    _window: AsyncWork

    async def submit(self, call: Call) -> Call:
        """Queue ``call`` (or join the identical query in flight); return it once answered."""
        start = False
        with self._lock:
            if self._loop is not type(self)._current_loop():
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
            batches = self._planned(calls)
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
            self._answered(batch)
