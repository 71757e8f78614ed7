"""The request loop of the async client: the steps that wait (send, retry, close).

Everything that does not wait (configuration, encoding, decoding, the retry decision, the
error mapping) is in :class:`chatarmin_os._client.core.ClientCore`. Hand-written;
``scripts/gen_sync.py`` turns it into ``_sync/_base_client.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .._batching import Call
from .._client.core import ClientCore, ClientIO, paths_of
from .._client.outcomes import Failure, Success, send_failure
from .._client.request import WireRequest
from .._concurrency import AsyncBackground, AsyncSleeper, AsyncWork, asleep
from .._exceptions import ChatarminOSError
from .._logs import logger
from .._telemetry import current_tracer, span
from ._batcher import AsyncBatcher
from ._http import AsyncHTTPPool, AsyncInProcessPool, AsyncPool

__all__ = ["AsyncBaseClient"]

_Self = TypeVar("_Self", bound="AsyncBaseClient")
_T = TypeVar("_T")


def _cache_group(options: Any, background: AsyncBackground) -> tuple[Any, AsyncWork]:
    from ._cache import AsyncCacheGroup  # the cache's code loads only when used

    group = AsyncCacheGroup(options, background)
    return group, group.aclose


class AsyncBaseClient(ClientCore):
    """Configuration, connection pool and the request loop; the public client derives from it."""

    _io = ClientIO(
        http_pool=AsyncHTTPPool,
        in_process_pool=AsyncInProcessPool,
        batcher=AsyncBatcher,
        background=AsyncBackground,
        sleep=asleep,
        http_client=httpx.AsyncClient,
        cache_group=_cache_group,
    )
    _pool: AsyncPool
    _background: AsyncBackground
    _batcher: AsyncBatcher | None
    _closing_steps: list[AsyncWork]
    _sleep: AsyncSleeper

    async def aclose(self) -> None:
        """Close this client; its pool too, unless it was passed in or belongs to a parent.

        Safe to call more than once. Calls made after it raise ``ChatarminOSError``.
        """
        if self._closed:
            return
        self._closed = True
        if not self._owns_pool:
            return
        for step in self._closing_steps:
            try:
                await step()
            except Exception:
                logger.exception("chatarmin_os: a closing step failed")
        await self._pool.aclose()

    async def __aenter__(self: _Self) -> _Self:
        if self._owns_pool:
            await self._background.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            if self._owns_pool:
                await self._background.close()

    async def _call(
        self,
        path: str,
        input: Any,
        parse: Callable[[Any], _T],
        *,
        idempotent: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> _T:
        """Call a procedure; return its output passed through ``parse``, or raise its error.

        ``idempotent`` marks a mutation that may safely be sent twice (it carries an
        idempotency key); queries always may. With batching on, the call may travel in a
        batch with others made at the same time; its result and error are its own.
        ``options`` are the caller's per-call options (``RequestOptions``): such a call is
        sent on its own.
        """
        self._check_open()
        call = self._prepare(path, input, idempotent=idempotent, options=options)
        tracer = current_tracer()
        if tracer is None:
            return await self._complete(call, parse)
        with span(tracer, path, call.kind, self._config.base_url.host) as current:
            try:
                return await self._complete(call, parse)
            finally:
                self._record(current, call)

    async def _complete(self, call: Call, parse: Callable[[Any], _T]) -> _T:
        """Send ``call`` (alone or batched), then parse its output or raise its error."""
        batcher = self._batcher
        if batcher is None or call.options is not None or self._pool.batching_refused:
            await self._send([call])
            return self._outcome(call, parse)
        call = await batcher.submit(call)
        return self._outcome(call, parse, shared=True)

    async def _call_many(
        self,
        path: str,
        inputs: Sequence[Any],
        parse: Callable[[Any], _T],
        *,
        idempotent: bool = False,
        max_retries: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[_T | ChatarminOSError]:
        """Call one procedure with many inputs, in tRPC batches; each call's result or error.

        Every input is checked before anything is sent. Batches follow the client's
        ``BatchOptions`` (the defaults when batching is off) and are sent one after the
        other; errors are returned in place, not raised. ``max_retries`` overrides the
        client's for these calls; ``options`` (the same for all) apply to each batch.
        """
        self._check_open()
        calls = [
            self._prepare(path, input, idempotent=idempotent, options=options) for input in inputs
        ]
        for batch in self._batches(calls):
            await self._send(batch, max_retries=max_retries)
        return self._results(calls, parse)

    async def _send(self, calls: list[Call], *, max_retries: int | None = None) -> None:
        """Send calls of one kind (one request: a call, or a batch) until each has an outcome.

        Retries follow the client's policy call by call: a retried batch carries only the
        calls that may be sent again; the others keep their error. A server that refuses
        batches gets every call on its own, from now on.
        """
        budget = self._config.max_retries if max_retries is None else max_retries
        pending = calls
        retries_taken = 0
        while True:
            if len(pending) > 1 and self._pool.batching_refused:
                for call in pending:
                    await self._send([call], max_retries=max_retries)
                return
            started = time.perf_counter()
            request = self._request_for(pending)
            outcomes = await self._attempt(request, pending)
            if self._batch_refused(pending, outcomes):
                continue  # nothing was run: send them one by one
            pending, delay = self._settle(
                request, pending, outcomes, started, retries_taken, budget
            )
            if not pending:
                return
            await self._sleep(delay)
            retries_taken += 1

    async def _attempt(
        self, request: WireRequest, calls: list[Call]
    ) -> Failure | list[Success | Failure]:
        """Send once; each call's output or error, or the failure of the whole request."""
        try:
            response = await self._pool.send(request)
        except Exception as exc:
            return send_failure(exc, request, paths_of(calls))
        return self._decode(response, calls)
