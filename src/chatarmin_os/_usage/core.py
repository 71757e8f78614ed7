"""The usage buffer's bookkeeping, the base class both twins inherit.

:class:`UsageBufferCore` never waits and never touches the network: the store, the lock,
the counters, the backoff state, which batch is due, what a batch's answers mean. The twins
(``_async/_usage_buffer.py``, generated into ``_sync/``) add what waits or starts work:
``put`` when the buffer is full, the worker and its lanes, sending, flush and close. The
lock is a plain ``threading.Lock`` held only for bookkeeping, never across a wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .._exceptions import (
    ChatarminOSError,
)
from .._fork import register as reset_after_fork
from .._logs import logger
from .._validate import resolved_payload
from .errors import UnlinkedOrgError, UsageBufferFullError
from .events import UsageEvent
from .memory_store import MemoryStore
from .policy import backoff_delay, describe_failure, report_lost
from .settlement import BatchFailure, SendOutcome, Settlement
from .spool import SpoolStore
from .stats import BufferCounters, UsageBufferStats

if TYPE_CHECKING:
    from .._concurrency import _Handle
    from .._models import Company
    from .options import UsageBufferOptions
    from .store import Store

__all__ = ["UsageBufferCore", "default_clock"]

WORKER_NAME = "chatarmin-os usage buffer"
NEEDS_TASK_GROUP = (
    "track_usage_later needs the client in `async with` under trio: the usage buffer's "
    "worker runs in the client's task group"
)
CLOSED = "This client is closed; make a new one to go on."


class _Signal(Protocol):
    def set(self) -> None: ...


class _Starter(Protocol):
    def can_start(self) -> bool: ...
    def start(self, work: Any, name: str) -> _Handle: ...


E = TypeVar("E", bound=_Signal)


class UsageBufferCore(Generic[E]):
    """The usage events of one client (and of its ``with_options`` copies for the same
    API key and URL), and the state of the worker that sends them.

    ``E`` is the twin's event type (set by one side, waited on by the other).
    """

    _batch_size: int

    def __init__(
        self,
        options: UsageBufferOptions,
        dest: str,
        *,
        background: _Starter,
        new_event: Callable[[], E],
        lease: float,
        batch_limit: int | None,
        clock: Callable[[], float],
    ) -> None:
        self.options = options
        """The options in force."""
        self._store: Store = (
            MemoryStore()
            if options.spool is None
            else SpoolStore(options.spool, dest, fsync=options.spool_fsync, lease=lease)
        )
        self._lock = threading.Lock()
        self._background = background
        self._new_event = new_event
        # One batch is one request: within the client's batch limit when it batches, and
        # within the server's once a batch was refused as too large (see _shrink_batch).
        self._batch_size = options.max_batch
        if batch_limit is not None:
            self._batch_size = min(self._batch_size, batch_limit)
        # Seams for tests: the clock (seconds), and manual mode (no worker: the test calls
        # _step(); flush() and close drain in the caller).
        self._clock = clock
        self._manual = False
        self._closed = False
        self._reset()
        reset_after_fork(self)

    def _reset(self) -> None:
        self._worker: _Handle | None = None
        self._stopped: E | None = None  # set when the worker ends
        self._worker_token = 0
        self._wake: E | None = None
        self._kick: E | None = None  # a lane waits on it for the next due batch
        self._sending = 0  # batches in flight
        self._room: E | None = None
        self._waiters: list[tuple[int, E]] = []
        self._flush_upto = 0
        self._failures = 0
        self._resume_at = 0.0
        self._idle = False  # the worker waits with nothing due: wake it for any event
        self._stopping = False
        self._counters = BufferCounters()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._store.after_fork()  # in memory: empty; a spool is shared, reopened here
        self._reset()

    def __repr__(self) -> str:
        where = "memory" if self.options.spool is None else f"spool {self.options.spool!s}"
        return f"<{type(self).__name__} ({where})>"

    # -- the caller's side -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ChatarminOSError(CLOSED)
        if not self._manual and not self._background.can_start():
            raise ChatarminOSError(NEEDS_TASK_GROUP)

    def _offer(self, payload: dict[str, Any]) -> tuple[bool, bool, E | None]:
        """Store an event when there is room: (added, hand over to the worker, the event
        to wait on for room when there was none; ``None`` then: drop it now)."""
        options = self.options
        with self._lock:
            store = self._store
            if store.has_room(options.max_pending):
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
                return True, handover, None
            if options.when_full == "drop" or options.block_timeout == 0:
                return False, False, None
            room = self._room
            if room is None:
                room = self._room = self._new_event()
            return False, False, room

    def _drop(self, payload: dict[str, Any]) -> tuple[UsageEvent, ChatarminOSError]:
        """Count and report an event that found no room; the event and its error."""
        event = UsageEvent(payload, self._clock(), 0)
        with self._lock:
            self._counters.dropped += 1
            dropped = self._counters.dropped
        error = UsageBufferFullError(
            f"The usage buffer is full ({self.options.max_pending:,} events pending): "
            "the event was dropped."
        )
        if self.options.on_error is not None:
            report_lost(self.options.on_error, event, error, what="dropped")
        elif dropped == 1 or dropped % 1000 == 0:
            logger.warning(
                "Usage buffer full (%d events pending): %d event(s) dropped so far; "
                "ChatarminOS is slow or down (see stats().last_error)",
                self.options.max_pending,
                dropped,
            )
        return event, error

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

    def _begin_flush(self) -> tuple[int, E | None]:
        """The last event a flush waits for (0: none pending) and, when a worker sends
        them, the event set once they are answered (``None``: drain in the caller)."""
        with self._lock:
            target = self._store.last_seq()
            if not target or not self._store.unresolved_upto(target):
                return 0, None
            self._flush_upto = max(self._flush_upto, target)
            done: E | None = None
            if not self._manual:
                worker = self._worker
                if (worker is None or not worker.alive()) and self._background.can_start():
                    self._start_worker()
                    worker = self._worker
                if worker is not None and worker.alive():
                    done = self._new_event()
                    self._waiters.append((target, done))
                    if self._wake is not None:
                        self._wake.set()
            if self._kick is not None:  # everything is due now
                self._kick_lane()
            return target, done

    def _end_flush(self, target: int, done: E | None, timeout: float | None) -> int:
        """How many events up to ``target`` are still pending after a flush (logged)."""
        with self._lock:
            self._waiters = [waiter for waiter in self._waiters if waiter[1] is not done]
            left = self._store.unresolved_upto(target)
        if left:
            logger.info("Usage buffer flush: %d event(s) still pending after %s s", left, timeout)
        return left

    def _begin_stop(self) -> E | None:
        """Ask the worker to stop; the event set when it ended (``None``: none runs, and
        the store is closed here)."""
        with self._lock:
            self._stopping = True
            if self._wake is not None:
                self._wake.set()
            worker = self._worker
            if worker is None or not worker.alive():
                self._store.close()  # else the worker closes it when it ends
                return None
            return self._stopped

    def _report_unsent(self, left: int, timeout: float) -> None:
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
        if not self._background.can_start():
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

    # -- the worker's bookkeeping ------------------------------------------------------

    def _work(self, token: int) -> Any:
        """The worker's loop (the twin's)."""
        raise NotImplementedError

    def _start_worker(self) -> None:
        """Start a worker (call under the lock); none when none can start now."""
        self._worker_token += 1
        token = self._worker_token
        try:
            self._worker = self._background.start(lambda: self._work(token), WORKER_NAME)
        except (RuntimeError, ChatarminOSError):  # no new thread at interpreter exit, ...
            self._worker = None

    def _claim_worker(self, token: int) -> E | None:
        """The worker ``token`` begins: the event it sets when it ends (``None``: it is
        not the current worker and ends at once)."""
        with self._lock:
            if token != self._worker_token:
                return None
            stopped = self._stopped = self._new_event()
            return stopped

    def _next_wake(self, token: int) -> E | None:
        """A new event to wake the worker with; ``None`` when it is to end."""
        with self._lock:
            if self._stopping or token != self._worker_token:
                return None
            wake = self._wake = self._new_event()
            self._idle = False
            return wake

    def _idle_out(self, wake: E) -> bool:
        """Whether an idle worker ends now (nothing due, no flush waiting)."""
        with self._lock:
            if (
                self._wake is wake
                and not self._waiters
                and self._store.next_due(self._clock(), 0.0) is None
            ):
                self._worker = None
                return True  # idle: the next event starts a worker again
            return False

    def _worker_ended(self, token: int) -> None:
        with self._lock:
            if token == self._worker_token:
                self._worker = None
                self._wake = None
            if self._stopping:
                self._store.close()

    def _back_off(self, headers: Mapping[str, str] | None) -> float:
        """Count a failed round and set when the next may start (see ``backoff_delay``)."""
        self._failures = min(self._failures + 1, 64)
        delay = backoff_delay(self._failures, headers)
        self._resume_at = self._clock() + delay
        return delay

    def _unresolved(self, target: int) -> int:
        with self._lock:
            return self._store.unresolved_upto(target)

    def _begin_round(self) -> tuple[list[UsageEvent], bool, float | None]:
        """The first due batch of a round (in flight from now on), whether another lane
        may find one, and (no batch) the seconds until one is due or ``None``."""
        now = self._clock()
        with self._lock:
            first = self._take(now)
            if not first:
                self._notify()
                wait = self._store.next_due(now, self.options.flush_interval)
                self._idle = wait is None
                return first, False, wait
            self._sending += 1
            # Another lane may find a due batch (now, or while this one is in flight).
            more = self._store.waiting() > 0 or len(first) >= self._batch_size
            return first, more, None

    def _end_round(self, failures: list[BatchFailure]) -> None:
        """A round's failures: none ends a run of failures, else back off (logged)."""
        if not failures:
            with self._lock:
                self._failures = 0
                self._counters.last_error = None
            return
        error = failures[0][0]
        headers = next((failure[1] for failure in failures if failure[1] is not None), None)
        auth = any(failure[2] for failure in failures)
        with self._lock:
            delay = self._back_off(headers)
        (logger.error if auth else logger.info)(
            "Usage buffer: %d event(s) not sent (%s)%s; next try in %.2f s",
            sum(failure[3] for failure in failures),
            describe_failure(error),
            " - check the API key; the events are kept" if auth else "",
            delay,
        )

    def _take(self, now: float) -> list[UsageEvent]:
        """The next due batch, in flight from now on (call under the lock)."""
        batch = self._store.take(
            now, self._batch_size, self.options.flush_interval, self._flush_upto
        )
        self._counters.retries += sum(1 for event in batch if event.attempts)
        return batch

    def _lane_take(self, failures: list[BatchFailure]) -> list[UsageEvent] | E | None:
        """A lane's next batch (counted in ``_sending``), or the event to wait on while
        another lane sends, or ``None``: the lane ends."""
        with self._lock:
            if failures or self._stopping:
                return None
            batch = self._take(self._clock())
            if batch:
                self._sending += 1
                return batch
            if not self._sending:
                return None
            # Another lane is sending: wait for a full batch, a flush, or its answer.
            kick = self._kick
            if kick is None:
                kick = self._kick = self._new_event()
            return kick

    def _lane_sent(
        self,
        batch: list[UsageEvent],
        failure: BatchFailure | None,
        settled: bool,
        failures: list[BatchFailure],
    ) -> list[UsageEvent]:
        """A lane's batch is over: the lane's next batch (empty: the lane ends)."""
        with self._lock:
            self._sending -= 1
            if not settled:  # cancelled (the loop ended) or a bug: keep the events
                self._store.settle([], batch)
            if failure is not None:
                failures.append(failure)  # before the kick: the other lane stops too
            following: list[UsageEvent] = []
            if failure is None and settled and not self._stopping and not failures:
                following = self._take(self._clock())
                if following:
                    self._sending += 1
            self._kick_lane()  # the other lane looks again (or ends with this one)
            return following

    def _kick_lane(self) -> None:
        """Wake the lane waiting for a due batch, if any (call under the lock)."""
        kick = self._kick
        if kick is not None:
            self._kick = None
            kick.set()

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

    # -- a batch: what to send, what the answers mean -----------------------------------

    @staticmethod
    def _orgs_of(batch: list[UsageEvent]) -> list[str]:
        """The external org ids of a batch to look up (once each)."""
        return list(
            dict.fromkeys(
                event.external_org_id
                for event in batch
                if event.company_id is None and event.external_org_id is not None
            )
        )

    @staticmethod
    def _resolve(
        batch: list[UsageEvent],
        orgs: list[str],
        found: list[Company | ChatarminOSError | None],
    ) -> tuple[list[SendOutcome], list[dict[str, Any]], list[int]]:
        """Each event's outcome so far (an unlinked org's error, or a stand-in with its
        company), the inputs to send and the places of their outcomes."""
        companies: dict[str, str | ChatarminOSError] = {}
        for org, linked in zip(orgs, found, strict=True):
            if linked is None:
                companies[org] = UnlinkedOrgError(org)
            else:
                companies[org] = linked if isinstance(linked, ChatarminOSError) else linked.id
        outcomes: list[SendOutcome] = []
        inputs: list[dict[str, Any]] = []
        places: list[int] = []
        for event in batch:
            company_id = event.company_id
            payload = event.payload
            if company_id is None:
                company = companies[str(event.external_org_id)]
                if isinstance(company, ChatarminOSError):
                    outcomes.append((company, None))
                    continue
                company_id, payload = company, resolved_payload(payload, company)
            places.append(len(outcomes))
            outcomes.append((ChatarminOSError("not sent"), company_id))
            inputs.append(payload)
        return outcomes, inputs, places

    def _shrink_batch(self, refused: int, error: ChatarminOSError) -> None:
        """A batch of ``refused`` events was refused as a whole: send at most half as many
        per batch from now on (remembered for the life of the buffer)."""
        size = max(1, refused // 2)
        with self._lock:
            if size >= self._batch_size:
                return
            self._batch_size = size
        logger.warning(
            "Usage buffer: ChatarminOS refused a batch of %d events as a whole (%s); "
            "sending at most %d per batch from now on",
            refused,
            describe_failure(error),
            size,
        )

    def _record(self, settled: Settlement) -> None:
        """Apply a batch's answers to the store and the counters."""
        duplicates = sum(1 for _, _, result in settled.answered if result.duplicate)
        with self._lock:
            self._store.settle(settled.done, settled.again)
            counters = self._counters
            counters.sent += len(settled.answered)
            counters.duplicates += duplicates
            counters.refused += len(settled.refused)
            if settled.failure is not None:
                counters.last_error = describe_failure(settled.failure)
            self._notify()

    def _report(self, batch: list[UsageEvent], settled: Settlement) -> None:
        """Tell ``on_error`` about the refused events of a batch; log the batch."""
        for event, error in settled.refused:
            report_lost(self.options.on_error, event, error, what="refused")
        duplicates = sum(1 for _, _, result in settled.answered if result.duplicate)
        logger.debug(
            "Usage buffer: batch of %d: %d sent (%d duplicates), %d refused, %d to retry",
            len(batch),
            len(settled.answered),
            duplicates,
            len(settled.refused),
            len(settled.again),
        )


def default_clock() -> float:
    """Seconds since the epoch (the buffer's clock unless a test gives another)."""
    return time.time()
