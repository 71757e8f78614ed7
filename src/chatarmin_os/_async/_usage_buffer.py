"""The usage buffer of the async client: enqueue without waiting, a worker that sends.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_usage_buffer.py``.

:meth:`AsyncUsageBuffer.put` stores a checked ``billing.trackUsage`` input (its idempotency
key already fixed) and returns; it waits only when the buffer is full and ``when_full`` is
``"block"``, and then only for room, never for the network. The worker runs in the
background (an asyncio task of the client; a task of its task group under trio, which needs
``async with client:``; a daemon thread in the blocking client), started on the first event
and again whenever it is gone (after a fork, under another event loop, after it idled out).
Each round it takes the next due batch (``max_batch`` events, or fewer once the oldest waited
``flush_interval``, or all of them when a flush asks), resolves ``external_org_id`` events to
companies, and sends the batch through the client's ``_call_many`` (tRPC batches, no retries
there). Answered events leave the store; refused ones go to ``on_error``; the rest stay, are
sent again with the same keys after a backoff (``Retry-After`` honoured, waited through the
client's ``sleep``), and are never counted twice because the server answers a known key with
``duplicate: true``.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx

from .. import _fork
from .._batching import BatchOptions
from .._concurrency import (
    AsyncEvent,
    agather,
    alet_others_run,
    at_exit_async,
    await_event,
    new_async_event,
)
from .._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    ChatarminOSError,
    InvalidInputError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from .._logs import logger
from .._models import UsageResult
from .._usage_buffer import (
    Counters,
    MemoryStore,
    SpoolStore,
    Store,
    UnlinkedOrgError,
    UsageBufferFullError,
    UsageBufferOptions,
    UsageBufferStats,
    UsageEvent,
    backoff_delay,
    classify,
    describe,
    lease_seconds,
    report,
)
from .._validate import resolved_payload

if TYPE_CHECKING:
    from .._concurrency import _Handle
    from .client import AsyncChatarminOS

__all__ = ["AsyncUsageBuffer"]

_NAME = "chatarmin-os usage buffer"
_IDLE_EXIT = 60.0  # seconds a worker with nothing to send waits before it ends
_IN_FLIGHT = 2  # batches sent at once: the next travels while the server works on one
_LANE_WAIT = 1.0  # seconds a lane waits for a kick before it looks again (a safety net)
_exit_deadline: list[float] = []  # when the buffers flushing at interpreter exit give up
_NEEDS_TASK_GROUP = (
    "track_usage_later needs the client in `async with` under trio: the usage buffer's "
    "worker runs in the client's task group"
)

_Outcome: TypeAlias = "tuple[UsageResult | ChatarminOSError, str | None]"
_Failure: TypeAlias = "tuple[ChatarminOSError, httpx.Headers | None, bool, int]"
"""How a batch failed: the first error, the headers of an answer, 401?, events kept."""


class AsyncUsageBuffer:
    """The usage events of one client (and of its ``with_options`` copies for the same
    API key and URL), and the worker that sends them. Reach it as ``client.usage_buffer``.
    """

    def __init__(self, client: AsyncChatarminOS, options: UsageBufferOptions, dest: str) -> None:
        self._client = client
        self.options = options
        """The options in force."""
        self._store: Store = (
            MemoryStore()
            if options.spool is None
            else SpoolStore(
                options.spool,
                dest,
                fsync=options.spool_fsync,
                lease=lease_seconds(client.timeout),
            )
        )
        self._lock = threading.Lock()
        self._sender: AsyncChatarminOS | None = None
        # One batch is one request: within the client's batch limit when it batches.
        batching = client.batching
        self._batch_size = options.max_batch
        if batching is not None:
            self._batch_size = min(self._batch_size, batching.max_items)
        # Seams for tests: the clock (seconds), and manual mode (no worker: the test calls
        # _step(); flush() and close drain in the caller).
        self._clock = time.time
        self._manual = False
        self._closed = False
        self._reset()
        _fork.register(self)
        ref = weakref.ref(self)

        async def close_at_exit() -> None:
            buffer = ref()
            if buffer is not None:
                # One bound for the whole exit, however many buffers: the first sets it
                # (their workers all send meanwhile).
                if not _exit_deadline:
                    _exit_deadline.append(time.monotonic() + buffer.options.close_timeout)
                await buffer._close(max(0.0, _exit_deadline[0] - time.monotonic()))

        at_exit_async(close_at_exit)

    def _reset(self) -> None:
        self._worker: _Handle | None = None
        self._stopped: AsyncEvent | None = None  # set when the worker ends
        self._worker_token = 0
        self._wake: AsyncEvent | None = None
        self._kick: AsyncEvent | None = None  # a lane waits on it for the next due batch
        self._sending = 0  # batches in flight
        self._room: AsyncEvent | None = None
        self._waiters: list[tuple[int, AsyncEvent]] = []
        self._flush_upto = 0
        self._failures = 0
        self._resume_at = 0.0
        self._idle = False  # the worker waits with nothing due: wake it for any event
        self._stopping = False
        self._counters = Counters()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._store.after_fork()  # in memory: empty; a spool is shared, reopened here
        self._reset()

    def __repr__(self) -> str:
        where = "memory" if self.options.spool is None else f"spool {self.options.spool!s}"
        return f"<{type(self).__name__} ({where})>"

    # -- the caller's side -------------------------------------------------------------

    async def put(self, payload: dict[str, Any]) -> str:
        """Enqueue a checked ``billing.trackUsage`` input; return its idempotency key.

        Waits only when the buffer is full and ``when_full="block"``, for room, at most
        ``block_timeout``; an event that finds no room is dropped (counted, reported).
        """
        key: str = payload["idempotencyKey"]
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        if not self._manual and not self._client._background.can_start():
            raise ChatarminOSError(_NEEDS_TASK_GROUP)
        options = self.options
        deadline: float | None = None
        while True:
            with self._lock:
                store = self._store
                added = store.has_room(options.max_pending)
                if added:
                    store.add(payload, self._clock())
                    waiting = store.waiting()
                    full = waiting >= self._batch_size
                    # This event completes a batch: let the worker take it (once per batch,
                    # whatever the worker does, so the cost is the same when it is down).
                    handover = waiting % self._batch_size == 0
                    wake = self._wake
                    if wake is not None and (self._idle or full):
                        self._idle = False
                        wake.set()
                    if full and self._kick is not None:
                        self._kick_lane()
                    worker = self._worker
                    if not self._manual and (worker is None or not worker.alive()):
                        self._start_worker()
                elif options.when_full == "drop" or options.block_timeout == 0:
                    break
                else:
                    if deadline is None and options.block_timeout is not None:
                        deadline = time.monotonic() + options.block_timeout
                    elif deadline is not None and time.monotonic() >= deadline:
                        break
                    room = self._room
                    if room is None:
                        room = self._room = new_async_event()
            if added:
                if handover:
                    await alet_others_run()
                return key
            assert room is not None
            await await_event(room, None if deadline is None else deadline - time.monotonic())
        self._drop(payload)
        return key

    def _drop(self, payload: dict[str, Any]) -> None:
        event = UsageEvent(payload, self._clock(), 0)
        with self._lock:
            self._counters.dropped += 1
            dropped = self._counters.dropped
        error = UsageBufferFullError(
            f"The usage buffer is full ({self.options.max_pending:,} events pending): "
            "the event was dropped."
        )
        if self.options.on_error is not None:
            report(self.options.on_error, event, error, what="dropped")
        elif dropped == 1 or dropped % 1000 == 0:
            logger.warning(
                "Usage buffer full (%d events pending): %d event(s) dropped so far; "
                "ChatarminOS is slow or down (see stats().last_error)",
                self.options.max_pending,
                dropped,
            )

    def stats(self) -> UsageBufferStats:
        """What the buffer did so far in this process, and what is pending now."""
        with self._lock:
            counters = self._counters
            pending = self._store.pending()
            oldest = self._store.oldest()
            return UsageBufferStats(
                pending=pending,
                sent=counters.sent,
                duplicates=counters.duplicates,
                refused=counters.refused,
                dropped=counters.dropped,
                retries=counters.retries,
                oldest_pending_age=None if oldest is None else max(0.0, self._clock() - oldest),
                last_error=counters.last_error,
            )

    async def flush(self, timeout: float | None = 30.0) -> int:
        """Send everything enqueued before this call; how many of those are still pending.

        Returns once each of them was answered (sent, a duplicate, or refused): ``0``; or
        when ``timeout`` seconds passed (``None``: no limit): the number still pending, which
        the worker goes on sending. Never raises for the network; a spool that cannot be read
        raises ``ChatarminOSError``.
        """
        with self._lock:
            target = self._store.last_seq()
            if not target or not self._store.unresolved_upto(target):
                return 0
            self._flush_upto = max(self._flush_upto, target)
            use_worker = False
            done: AsyncEvent | None = None
            if not self._manual:
                worker = self._worker
                if (worker is None or not worker.alive()) and self._client._background.can_start():
                    self._start_worker()
                    worker = self._worker
                use_worker = worker is not None and worker.alive()
            if use_worker:
                done = new_async_event()
                self._waiters.append((target, done))
                if self._wake is not None:
                    self._wake.set()
            if self._kick is not None:  # everything is due now
                self._kick_lane()
        if done is not None:
            await await_event(done, timeout)
        else:
            await self._drain(target, timeout)
        with self._lock:
            self._waiters = [waiter for waiter in self._waiters if waiter[1] is not done]
            left = self._store.unresolved_upto(target)
        if left:
            logger.info("Usage buffer flush: %d event(s) still pending after %s s", left, timeout)
        return left

    async def aclose(self) -> None:
        """Flush for at most ``close_timeout`` seconds, then stop the worker (idempotent).

        Events still pending are logged: lost when in memory, kept in a spool for the next
        process.
        """
        await self._close(self.options.close_timeout)

    async def _close(self, timeout: float) -> None:
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        try:
            left = await self.flush(timeout)
        except ChatarminOSError as exc:
            logger.error("Usage buffer: flushing on close failed: %s", exc)
            left = 0
        with self._lock:
            self._stopping = True
            if self._wake is not None:
                self._wake.set()
            worker = self._worker
            stopped = self._stopped
            if worker is None or not worker.alive():
                self._store.close()  # else the worker closes it when it ends
                stopped = None
        if stopped is not None:  # let a batch in flight settle, within the same bound
            await await_event(stopped, deadline - time.monotonic())
        if left:
            kept = (
                f"; they stay in the spool {self.options.spool!s} for the next process"
                if self.options.spool is not None
                else " and are lost (use a spool to keep them)"
            )
            logger.warning(
                "Usage buffer: %d event(s) not sent within %.3g s of closing%s",
                left,
                timeout,
                kept,
            )

    def resume(self) -> None:
        """Start sending what a spool holds from an earlier process (if a worker can start)."""
        if self._manual or self._closed or self.options.spool is None:
            return
        if not self._client._background.can_start():
            return
        try:
            leftovers = self._store.has_leftovers()
        except ChatarminOSError as exc:
            logger.error("Usage buffer: %s", exc)
            return
        if leftovers:
            with self._lock:
                worker = self._worker
                if worker is None or not worker.alive():
                    self._start_worker()

    # -- the worker --------------------------------------------------------------------

    def _start_worker(self) -> None:
        """Start a worker (call under the lock); none when none can start now."""
        self._worker_token += 1
        token = self._worker_token
        try:
            self._worker = self._client._background.start(lambda: self._work(token), _NAME)
        except (RuntimeError, ChatarminOSError):  # no new thread at interpreter exit, ...
            self._worker = None

    async def _work(self, token: int) -> None:
        with self._lock:
            if token != self._worker_token:
                return
            stopped = self._stopped = new_async_event()
        try:
            while True:
                with self._lock:
                    if self._stopping or token != self._worker_token:
                        return
                    wake = self._wake = new_async_event()
                    self._idle = False
                if await self._backoff(None):
                    continue
                try:
                    wait = await self._step()
                except ChatarminOSError as exc:  # the spool failed: try again later
                    logger.error("Usage buffer: %s", exc)
                    self._back_off(None)
                    continue
                if wait is not None and wait <= 0:
                    continue
                if await await_event(wake, _IDLE_EXIT if wait is None else wait):
                    continue
                if wait is None:
                    with self._lock:
                        if (
                            self._wake is wake
                            and not self._waiters
                            and self._store.next_due(self._clock(), 0.0) is None
                        ):
                            self._worker = None
                            return  # idle: the next event starts a worker again
        finally:
            with self._lock:
                if token == self._worker_token:
                    self._worker = None
                    self._wake = None
                if self._stopping:
                    self._store.close()
            stopped.set()

    async def _backoff(self, deadline: float | None) -> bool:
        """Wait out the backoff of a failed round through the client's ``sleep`` (events do
        not cut it short); whether it waited. Not when it would end after ``deadline``."""
        resume_at = self._resume_at
        if not resume_at:
            return False
        pause = resume_at - self._clock()
        if pause > 0:
            if deadline is not None and resume_at > deadline:
                return False
            await self._client._sleep(pause)
        if self._resume_at == resume_at:
            self._resume_at = 0.0  # waited, however the sleeper waits
        return pause > 0

    def _back_off(self, headers: httpx.Headers | None) -> float:
        """Count a failed round and set when the next may start (see ``backoff_delay``)."""
        self._failures = min(self._failures + 1, 64)
        delay = backoff_delay(self._failures, headers)
        self._resume_at = self._clock() + delay
        return delay

    async def _drain(self, target: int, timeout: float | None) -> None:
        """Send in the caller until events up to ``target`` are answered or time is up."""
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            with self._lock:
                if not self._store.unresolved_upto(target):
                    return
            now = self._clock()
            if deadline is not None and now >= deadline:
                return
            if await self._backoff(deadline):
                continue
            if self._resume_at:
                return  # the backoff ends after the deadline
            wait = await self._step()
            if wait is None:
                return
            if wait > 0:  # rows leased by another process: look again soon
                if deadline is not None:
                    wait = min(wait, deadline - now)
                await self._client._sleep(wait)

    async def _step(self) -> float | None:
        """Send due batches until none is due, two at a time, if any.

        Two lanes each take the next due batch, send it, settle it and take another, so a
        batch travels while the server works on the other; a failed batch stops both (the
        backoff follows). The second lane runs when more is waiting or the first batch is
        full (events are coming fast): while the other lane has a batch in flight, it waits
        for the next batch to fill. Returns ``0`` after sending (look again at once), else
        the seconds until a batch is due, or ``None`` when nothing is pending.
        """
        now = self._clock()
        with self._lock:
            first = self._take(now)
            if not first:
                self._notify()
                wait = self._store.next_due(now, self.options.flush_interval)
                self._idle = wait is None
                return wait
            self._sending += 1
            # Another lane may find a due batch (now, or while this one is in flight).
            more = self._store.waiting() > 0 or len(first) >= self._batch_size
        failures: list[_Failure] = []
        lanes = [functools.partial(self._lane, failures, first)]
        if more:
            lanes += [functools.partial(self._lane, failures, None)] * (_IN_FLIGHT - 1)
        await agather(lanes)
        if not failures:
            with self._lock:  # a round that failed nowhere ends a run of failures
                self._failures = 0
                self._counters.last_error = None
            return 0.0
        error = failures[0][0]
        headers = next((failure[1] for failure in failures if failure[1] is not None), None)
        auth = any(failure[2] for failure in failures)
        with self._lock:
            delay = self._back_off(headers)
        (logger.error if auth else logger.info)(
            "Usage buffer: %d event(s) not sent (%s)%s; next try in %.2f s",
            sum(failure[3] for failure in failures),
            describe(error),
            " - check the API key; the events are kept" if auth else "",
            delay,
        )
        return 0.0

    def _take(self, now: float) -> list[UsageEvent]:
        """The next due batch, in flight from now on (call under the lock)."""
        batch = self._store.take(
            now, self._batch_size, self.options.flush_interval, self._flush_upto
        )
        self._counters.retries += sum(1 for event in batch if event.attempts)
        return batch

    async def _lane(self, failures: list[_Failure], batch: list[UsageEvent] | None) -> None:
        """Send and settle ``batch`` (if given: counted in ``_sending`` already) and the next
        due ones, one after the other, until none is due while no other lane has a batch in
        flight, or a lane failed."""
        while not batch:
            with self._lock:
                if failures or self._stopping:
                    return
                batch = self._take(self._clock())
                if batch:
                    self._sending += 1
                    break
                if not self._sending:
                    return
                # Another lane is sending: wait for a full batch, a flush, or its answer.
                kick = self._kick
                if kick is None:
                    kick = self._kick = new_async_event()
            # No event outlives its loop: the lane sending kicks (and clears) it when it
            # ends, cancelled included, and this lane waits only while one sends.
            await await_event(kick, _LANE_WAIT)
        while True:
            failure: _Failure | None = None
            settled = False
            try:
                failure = await self._settle(batch, await self._send(batch))
                settled = True
            finally:
                with self._lock:
                    self._sending -= 1
                    if not settled:  # cancelled (the loop ended) or a bug: keep the events
                        self._store.settle([], batch)
                    if failure is not None:
                        failures.append(failure)  # before the kick: the other lane stops too
                    if failure is None and settled and not self._stopping and not failures:
                        batch = self._take(self._clock())
                        if batch:
                            self._sending += 1
                    else:
                        batch = []
                    self._kick_lane()  # the other lane looks again (or ends with this one)
            if not batch:
                return

    def _kick_lane(self) -> None:
        """Wake the lane waiting for a due batch, if any (call under the lock)."""
        kick = self._kick
        if kick is not None:
            self._kick = None
            kick.set()

    async def _settle(self, batch: list[UsageEvent], outcomes: list[_Outcome]) -> _Failure | None:
        """Apply a batch's answers; how it failed, when some events are to be sent again."""
        done: list[UsageEvent] = []
        again: list[UsageEvent] = []
        answered: list[tuple[str, str, UsageResult]] = []
        refused: list[tuple[UsageEvent, ChatarminOSError]] = []
        over: list[tuple[str, str]] = []  # (company, feature) refused for a limit or access
        failure: ChatarminOSError | None = None
        headers: httpx.Headers | None = None
        auth = False
        for event, (result, company_id) in zip(batch, outcomes, strict=True):
            if isinstance(result, UsageResult):
                done.append(event)
                assert company_id is not None
                answered.append((company_id, event.feature_code, result))
                continue
            outcome = classify(result)
            if outcome == "refused":
                done.append(event)
                refused.append((event, result))
                if company_id is not None and isinstance(
                    result, (PreconditionFailedError, PermissionDeniedError)
                ):
                    over.append((company_id, event.feature_code))
                continue
            again.append(event)
            auth = auth or outcome == "auth"
            if failure is None:
                failure = result
            if headers is None and isinstance(result, (APIStatusError, APIResponseValidationError)):
                headers = result.response.headers
        duplicates = sum(1 for _, _, result in answered if result.duplicate)
        with self._lock:
            self._store.settle(done, again)
            counters = self._counters
            counters.sent += len(answered)
            counters.duplicates += duplicates
            counters.refused += len(refused)
            if failure is not None:
                counters.last_error = describe(failure)
            self._notify()
        for company_id, feature_code, result in answered:
            try:
                await self._client._usage_answered(company_id, feature_code, result)
            except Exception:
                logger.exception("chatarmin_os: noting a usage answer failed")
        for company_id, feature_code in over:
            try:
                await self._client._usage_refused(company_id, feature_code)
            except Exception:
                logger.exception("chatarmin_os: noting a refused usage failed")
        for event, error in refused:
            report(self.options.on_error, event, error, what="refused")
        logger.debug(
            "Usage buffer: batch of %d: %d sent (%d duplicates), %d refused, %d to retry",
            len(batch),
            len(answered),
            duplicates,
            len(refused),
            len(again),
        )
        if failure is None:
            return None
        return failure, headers, auth, len(again)

    def _notify(self) -> None:
        """Wake a caller waiting for room and the flushes that are done (under the lock)."""
        room = self._room
        if room is not None and self._store.has_room(self.options.max_pending):
            self._room = None
            room.set()
        if self._waiters:
            waiting = []
            for target, done in self._waiters:
                if self._store.unresolved_upto(target):
                    waiting.append((target, done))
                else:
                    done.set()
            self._waiters = waiting

    def _sender_client(self) -> AsyncChatarminOS:
        """A copy of the client sending batches of ``max_batch`` (and open while it closes)."""
        sender = self._sender
        if sender is None:
            client = self._client
            options = dataclasses.replace(
                client.batching or BatchOptions(), max_items=self._batch_size
            )
            sender = self._sender = client.with_options(batching=options)
        return sender

    async def _send(self, batch: list[UsageEvent]) -> list[_Outcome]:
        """Each event's answer (a result or an error) and the company it was counted for."""
        sender = self._sender_client()
        orgs = list(
            dict.fromkeys(
                event.external_org_id
                for event in batch
                if event.company_id is None and event.external_org_id is not None
            )
        )
        companies: dict[str, str | ChatarminOSError] = {}
        if orgs:  # looked up together: one round trip for the batch's orgs
            answers = await sender.companies._get_many_by_product_link(orgs)
            for org, company in zip(orgs, answers, strict=True):
                if company is None:
                    companies[org] = UnlinkedOrgError(org)
                elif isinstance(company, ChatarminOSError):
                    companies[org] = company
                else:
                    companies[org] = company.id
        outcomes: list[_Outcome] = []
        inputs: list[dict[str, Any]] = []
        places: list[int] = []
        for event in batch:
            company_id = event.company_id
            payload = event.payload
            if company_id is None:
                found = companies[str(event.external_org_id)]
                if isinstance(found, ChatarminOSError):
                    outcomes.append((found, None))
                    continue
                company_id, payload = found, resolved_payload(payload, found)
            places.append(len(outcomes))
            outcomes.append((ChatarminOSError("not sent"), company_id))
            inputs.append(payload)
        if inputs:
            results = await self._track_many(sender, inputs)
            for place, result in zip(places, results, strict=True):
                outcomes[place] = (result, outcomes[place][1])
        return outcomes

    async def _track_many(
        self, sender: AsyncChatarminOS, inputs: list[dict[str, Any]]
    ) -> list[UsageResult | ChatarminOSError]:
        try:
            return await sender._call_many(
                "billing.trackUsage",
                inputs,
                UsageResult.model_validate,
                idempotent=True,
                max_retries=0,
            )
        except InvalidInputError as exc:  # one input cannot be encoded: find it
            if len(inputs) == 1:
                return [exc]
            results: list[UsageResult | ChatarminOSError] = []
            for one in inputs:
                results.extend(await self._track_many(sender, [one]))
            return results
        except ChatarminOSError as exc:  # the pool was closed under us
            return [exc] * len(inputs)
