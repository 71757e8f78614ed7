"""The usage buffer of the async client: enqueue without waiting, a worker that sends.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_usage_buffer.py``. The
bookkeeping is :class:`chatarmin_os._usage.core.UsageBufferCore`; this twin adds what waits
or starts work.

:meth:`AsyncUsageBuffer.put` stores a checked ``billing.trackUsage`` input (its idempotency
key already fixed) and returns; it waits only when the buffer is full and ``when_full`` is
``"block"``, and then only for room, never for the network. The worker runs in the
background (an asyncio task of the client; a task of its task group under trio, which needs
``async with client:``; a daemon thread in the blocking client), started on the first event
and again whenever it is gone (after a fork, under another event loop, after it idled out).
Each round it takes the next due batch (``max_batch`` events, or fewer once the oldest waited
``flush_interval``, or all of them when a flush asks), resolves ``external_org_id`` events to
companies through ``find_companies``, and sends the batch through ``send`` (one tRPC batch,
no retries there). Answered events leave the store; refused ones go to ``on_error``; the
rest stay, are sent again with the same keys after a backoff (``Retry-After`` honoured,
waited through ``sleep``), and are never counted twice because the server answers a known key
with ``duplicate: true``. A batch the server refuses as a whole (too many calls, too large)
is split and sent again, and the smaller size is kept.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._concurrency import (
    AsyncBackground,
    AsyncEvent,
    AsyncSleeper,
    AsyncWork,
    agather,
    alet_others_run,
    at_exit_async,
    await_event,
    new_async_event,
)
from .._exceptions import ChatarminOSError, InvalidInputError
from .._logs import logger
from .._usage.core import UsageBufferCore, default_clock
from .._usage.policy import refuses_whole_batch
from .._usage.settlement import BatchFailure, SendOutcome, judge

if TYPE_CHECKING:
    from .._models import UsageResult
    from .._usage.events import UsageEvent
    from .._usage.options import UsageBufferOptions
    from .._usage.ports import (
        AsyncFindCompanies,
        AsyncSendUsage,
        AsyncUsageAcknowledged,
        AsyncUsageAnswered,
        AsyncUsageRefused,
    )

__all__ = ["AsyncUsageBuffer"]

_IDLE_EXIT = 60.0  # seconds a worker with nothing to send waits before it ends
_IN_FLIGHT = 2  # batches sent at once: the next travels while the server works on one
_LANE_WAIT = 1.0  # seconds a lane waits for a kick before it looks again (a safety net)
_exit_deadline: list[float] = []  # when the buffers flushing at interpreter exit give up


class AsyncUsageBuffer(UsageBufferCore[AsyncEvent]):
    """The usage events of one client (and of its ``with_options`` copies for the same
    API key and URL), and the worker that sends them. Reach it as ``client.usage_buffer``.

    Made by the client with what it needs instead of the client (see
    :mod:`chatarmin_os._usage.ports`): ``send`` and ``find_companies`` to talk to
    ChatarminOS, ``answered``/``refused``/``acknowledged`` to hear about answers,
    ``background`` to start the worker, ``sleep`` to back off, ``settled`` to hear that a
    batch was settled (answered or failed: once per batch); ``lease`` is how long a spool
    row stays claimed by a sender, ``batch_limit`` the client's own batch limit.
    """

    def __init__(
        self,
        options: UsageBufferOptions,
        dest: str,
        *,
        send: AsyncSendUsage,
        find_companies: AsyncFindCompanies,
        background: AsyncBackground,
        sleep: AsyncSleeper,
        answered: AsyncUsageAnswered | None = None,
        refused: AsyncUsageRefused | None = None,
        acknowledged: AsyncUsageAcknowledged | None = None,
        settled: AsyncWork | None = None,
        lease: float = 600.0,
        batch_limit: int | None = None,
        clock: Callable[[], float] = default_clock,
    ) -> None:
        super().__init__(
            options,
            dest,
            background=background,
            new_event=new_async_event,
            lease=lease,
            batch_limit=batch_limit,
            clock=clock,
        )
        self._send_usage = send
        self._find_companies = find_companies
        self._answered = answered
        self._refused = refused
        self.acknowledged = acknowledged
        """``acknowledged(event, outcome)``, awaited once per event with its final outcome."""
        self._settled = settled
        self._sleep = sleep
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

    # -- the caller's side -------------------------------------------------------------

    async def put(self, payload: dict[str, Any]) -> str:
        """Enqueue a checked ``billing.trackUsage`` input; return its idempotency key.

        Waits only when the buffer is full and ``when_full="block"``, for room, at most
        ``block_timeout``; an event that finds no room is dropped (counted, reported).
        """
        key: str = payload["idempotencyKey"]
        self._check_open()
        deadline: float | None = None
        while True:
            added, handover, room = self._offer(payload)
            if added:
                if handover:
                    await alet_others_run()
                return key
            if room is None:
                break
            if deadline is None and self.options.block_timeout is not None:
                deadline = time.monotonic() + self.options.block_timeout
            elif deadline is not None and time.monotonic() >= deadline:
                break
            await await_event(room, None if deadline is None else deadline - time.monotonic())
        await self._acknowledge([self._drop(payload)])
        return key

    async def flush(self, timeout: float | None = 30.0) -> int:
        """Send everything enqueued before this call; how many of those are still pending.

        Returns once each of them was answered (sent, a duplicate, or refused): ``0``; or
        when ``timeout`` seconds passed (``None``: no limit): the number still pending, which
        the worker goes on sending. Never raises for the network; a spool that cannot be read
        raises ``ChatarminOSError``.
        """
        target, done = self._begin_flush()
        if not target:
            return 0
        if done is not None:
            await await_event(done, timeout)
        else:
            await self._drain(target, timeout)
        return self._end_flush(target, done, timeout)

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
        stopped = self._begin_stop()
        if stopped is not None:  # let a batch in flight settle, within the same bound
            await await_event(stopped, deadline - time.monotonic())
        self._report_unsent(left, timeout)

    # -- the worker --------------------------------------------------------------------

    async def _work(self, token: int) -> None:
        stopped = self._claim_worker(token)
        if stopped is None:
            return
        try:
            while True:
                wake = self._next_wake(token)
                if wake is None:
                    return
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
                if wait is None and self._idle_out(wake):
                    return
        finally:
            self._worker_ended(token)
            stopped.set()

    async def _backoff(self, deadline: float | None) -> bool:
        """Wait out the backoff of a failed round through ``sleep`` (events do not cut it
        short); whether it waited. Not when it would end after ``deadline``."""
        resume_at = self._resume_at
        if not resume_at:
            return False
        pause = resume_at - self._clock()
        if pause > 0:
            if deadline is not None and resume_at > deadline:
                return False
            await self._sleep(pause)
        if self._resume_at == resume_at:
            self._resume_at = 0.0  # waited, however the sleeper waits
        return pause > 0

    async def _drain(self, target: int, timeout: float | None) -> None:
        """Send in the caller until events up to ``target`` are answered or time is up."""
        deadline = None if timeout is None else self._clock() + timeout
        while self._unresolved(target):
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
                await self._sleep(wait)

    async def _step(self) -> float | None:
        """Send due batches until none is due, two at a time, if any.

        Two lanes each take the next due batch, send it, settle it and take another, so a
        batch travels while the server works on the other; a failed batch stops both (the
        backoff follows). The second lane runs when more is waiting or the first batch is
        full (events are coming fast): while the other lane has a batch in flight, it waits
        for the next batch to fill. Returns ``0`` after sending (look again at once), else
        the seconds until a batch is due, or ``None`` when nothing is pending.
        """
        first, more, wait = self._begin_round()
        if not first:
            return wait
        failures: list[BatchFailure] = []
        lanes = [functools.partial(self._lane, failures, first)]
        if more:
            lanes += [functools.partial(self._lane, failures, None)] * (_IN_FLIGHT - 1)
        await agather(lanes)
        self._end_round(failures)
        return 0.0

    async def _lane(self, failures: list[BatchFailure], batch: list[UsageEvent] | None) -> None:
        """Send and settle ``batch`` (if given: counted in ``_sending`` already) and the next
        due ones, one after the other, until none is due while no other lane has a batch in
        flight, or a lane failed."""
        while not batch:
            taken = self._lane_take(failures)
            if taken is None:
                return
            if isinstance(taken, list):
                batch = taken
                break
            # No event outlives its loop: the lane sending kicks (and clears) it when it
            # ends, cancelled included, and this lane waits only while one sends.
            await await_event(taken, _LANE_WAIT)
        while batch:
            failure: BatchFailure | None = None
            settled = False
            try:
                failure = await self._settle(batch, await self._send(batch))
                settled = True
            finally:
                batch = self._lane_sent(batch, failure, settled, failures)

    async def _settle(
        self, batch: list[UsageEvent], outcomes: list[SendOutcome]
    ) -> BatchFailure | None:
        """Apply a batch's answers; how it failed, when some events are to be sent again."""
        settled = judge(batch, outcomes)
        if self._answered is not None:
            for event, company_id, result in settled.answered:
                try:
                    await self._answered(company_id, event.feature_code, result)
                except Exception:
                    logger.exception("chatarmin_os: noting a usage answer failed")
        if self._refused is not None:
            for company_id, feature_code in settled.over:
                try:
                    await self._refused(company_id, feature_code)
                except Exception:
                    logger.exception("chatarmin_os: noting a refused usage failed")
        self._report(batch, settled)
        await self._acknowledge(settled.finals)
        if self._settled is not None:
            try:
                await self._settled()
            except Exception:
                logger.exception("chatarmin_os: the usage buffer's settled raised")
        # Last: a flush waiting for these events returns once everyone heard of them.
        self._record(settled)
        return settled.as_failure()

    async def _acknowledge(
        self, finals: list[tuple[UsageEvent, UsageResult | ChatarminOSError]]
    ) -> None:
        """Tell ``acknowledged`` each event's final outcome."""
        acknowledged = self.acknowledged
        if acknowledged is None:
            return
        for event, outcome in finals:
            try:
                await acknowledged(event, outcome)
            except Exception:
                logger.exception("chatarmin_os: the usage buffer's acknowledged raised")

    async def _send(self, batch: list[UsageEvent]) -> list[SendOutcome]:
        """Each event's answer (a result or an error) and the company it was counted for."""
        orgs = self._orgs_of(batch)
        # Looked up together: one round trip for the batch's orgs.
        found = await self._find_companies(orgs) if orgs else []
        outcomes, inputs, places = self._resolve(batch, orgs, found)
        if inputs:
            results = await self._track_many(inputs)
            for place, result in zip(places, results, strict=True):
                outcomes[place] = (result, outcomes[place][1])
        return outcomes

    async def _track_many(
        self, inputs: list[dict[str, Any]]
    ) -> list[UsageResult | ChatarminOSError]:
        """Each input's answer, sent as one batch; the events of a batch refused as a whole
        are sent again in smaller batches (and the smaller size is kept)."""
        try:
            results = await self._send_usage(inputs)
        except InvalidInputError as exc:  # one input cannot be encoded: find it
            if len(inputs) == 1:
                return [exc]
            results = []
            for one in inputs:
                results.extend(await self._track_many([one]))
            return results
        except ChatarminOSError as exc:  # the pool was closed under us
            return [exc] * len(inputs)
        refused = [place for place, result in enumerate(results) if refuses_whole_batch(result)]
        if not refused:
            return results
        error = results[refused[0]]
        assert isinstance(error, ChatarminOSError)
        self._shrink_batch(len(refused), error)
        again = [inputs[place] for place in refused]
        answers: list[UsageResult | ChatarminOSError] = []
        while len(answers) < len(again):  # at the size in force when each part leaves
            part = again[len(answers) : len(answers) + self._batch_size]
            answers.extend(await self._track_many(part))
        for place, answer in zip(refused, answers, strict=True):
            results[place] = answer
        return results
