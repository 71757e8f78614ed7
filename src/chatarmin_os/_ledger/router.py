"""Non-waiting parts of the ledger front both twins share: arguments of each script, which
ledger (Redis or this process) holds what, and the commands and replies of a round trip
(what is deferred and when it is sent: :mod:`.pipeline`)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._fork import register as reset_after_fork
from .._logs import logger
from .memory import MemoryLedger, Slot
from .pipeline import Op, Pending, pack, pack_head, pack_tail, script_shas, settle
from .redis_scripts import (
    ACKNOWLEDGE,
    COMMIT,
    DROP,
    FIGURES,
    HOLD,
    LOAD,
    REFUSE,
    RELEASE,
    LedgerKeys,
)

if TYPE_CHECKING:
    from .options import ReservationOptions

__all__ = ["LEDGER_PREFIX", "SCRIPTS", "Answer", "LedgerCore"]

LEDGER_PREFIX = "chatarmin_os:ledger:1"
"""Where the quota ledger's keys live in Redis (then the product's hash)."""

Answer = tuple[Literal["counted", "refused", "dropped"], int | None]
"""What became of a metered event: counted (with the usage the server reported), refused
by the server, or given up on."""

SCRIPTS: dict[str, str] = {
    "hold": HOLD,
    "load": LOAD,
    "commit": COMMIT,
    "release": RELEASE,
    "acknowledge": ACKNOWLEDGE,
    "refuse": REFUSE,
    "drop": DROP,
    "figures": FIGURES,
}

SHAS = script_shas(SCRIPTS)

_MAX_REMEMBERED = 100_000
_MAX_HEADS = 4096  # packed script-and-keys starts kept (per script and slot)

_L = TypeVar("_L", bound="LedgerCore")


class LedgerCore:
    """Where each operation goes, and the arguments it takes; the twins add the waiting.

    ``connect()`` gives the Redis client to use now (``None``: Redis is unusable, e.g. down,
    under trio, or not configured), ``keys`` where the product's entries live in Redis.
    A hold is committed or released where it was taken; in-flight usage is acknowledged
    where it was committed (remembered here by idempotency key until then).
    """

    def __init__(
        self,
        memory: MemoryLedger,
        *,
        keys: LedgerKeys | None = None,
        connect: Callable[[], Any] | None = None,
        failed: Callable[[str, BaseException], None] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.memory = memory
        self._keys = keys
        self._connect = connect
        self._failed = failed
        self._wall = wall
        self._scripts: tuple[Any, dict[str, Any]] | None = None
        self._flights: dict[str, bool] = {}  # idempotency key -> committed in Redis?
        self._committing: dict[str, Answer | None] = {}  # key -> an answer that came early
        self._lock = threading.Lock()
        self._idle_ms = int(max(memory.hold_timeout, memory.flight_timeout, memory.refresh) * 1000)
        self._idle_ms += 60_000
        self._warned_expired = False
        self._heads: dict[tuple[str, Slot, int], bytes] = {}
        self.pending = Pending(max_age=min(memory.hold_timeout, memory.flight_timeout) / 4)
        reset_after_fork(self)  # a forked child drops the parent's connection and entries

    @classmethod
    def create(cls: type[_L], options: ReservationOptions, product: str, redis: Any = None) -> _L:
        """A ledger for ``product`` with ``options``: in Redis through ``redis`` (the
        cache's Redis level: its connection, failures counted with the cache's) when
        given, else in the process."""
        memory = MemoryLedger(
            hold_timeout=options.hold_timeout,
            flight_timeout=options.flight_timeout,
            refresh=options.refresh,
        )
        if redis is None:
            return cls(memory)
        keys = LedgerKeys(LEDGER_PREFIX, product)
        return cls(memory, keys=keys, connect=redis.connection, failed=redis.failed)

    def __repr__(self) -> str:
        where = "redis" if self._keys is not None else "memory"
        return f"<{type(self).__name__} {where}>"

    def _after_fork_in_child(self) -> None:
        """A forked child forgets the parent's connection, flights and in-process entries
        (holds in Redis stay shared: they are the quota's, not the process's)."""
        self._scripts = None
        self._flights = {}
        self._committing = {}
        self._lock = threading.Lock()
        self.pending.reset()  # the parent sends what it deferred
        self.memory.after_fork_in_child()

    @property
    def shared(self) -> bool:
        """Whether the ledger is in Redis (when Redis answers)."""
        return self._keys is not None

    def client(self) -> Any:
        """The Redis client to use now, or ``None`` (not in Redis, or Redis unusable now)."""
        if self._keys is None or self._connect is None:
            return None
        client = self._connect()
        if client is not None and (self._scripts is None or self._scripts[0] is not client):
            self._scripts = (client, {})  # none loaded yet: see loads()
        return client

    def keys(self, slot: Slot) -> list[str]:
        assert self._keys is not None
        return self._keys.slot(*slot)

    def failed(self, what: str, error: BaseException) -> None:
        """Tell the Redis level a call failed (it backs off)."""
        if self._failed is not None:
            self._failed(f"ledger {what}", error)

    def committed_without_hold(self, feature_code: str) -> None:
        """A commit came after its hold expired (or was given back): it meters all the
        same, but the quota was not held meanwhile. Logged once per ledger."""
        if not self._warned_expired:
            self._warned_expired = True
            logger.warning(
                "billing.reserve: a reservation of %s was committed after its hold expired "
                "(hold_timeout %.0f s); metered anyway, the limit was not held for it",
                feature_code,
                self.memory.hold_timeout,
            )

    # -- script arguments ------------------------------------------------------------------

    def hold_args(self, hold_id: str, quantity: int) -> list[Any]:
        now = self._wall()
        memory = self.memory
        return [now, hold_id, quantity, now + memory.hold_timeout, memory.refresh, self._idle_ms]

    def load_args(self, limit: int | None, usage: int, enabled: bool) -> list[Any]:
        limit_text = "" if limit is None else limit
        enabled_text = "1" if enabled else "0"
        now = self._wall()
        return [now, limit_text, usage, enabled_text, self.memory.refresh, self._idle_ms]

    def commit_args(self, hold_id: str, quantity: int, key: str) -> list[Any]:
        now = self._wall()
        return [hold_id, quantity, key, now + self.memory.flight_timeout, self._idle_ms, now]

    def figures_args(self) -> list[Any]:
        return [self._wall()]

    # -- where flights are ------------------------------------------------------------------

    def flew(self, key: str, in_redis: bool) -> None:
        """Remember where the event ``key`` was committed."""
        with self._lock:
            if len(self._flights) >= _MAX_REMEMBERED:
                self._flights.pop(next(iter(self._flights)))
            self._flights[key] = in_redis

    def landed(self, key: str) -> bool | None:
        """Where the event ``key`` was committed (forgotten now); ``None``: not by us."""
        with self._lock:
            return self._flights.pop(key, None)

    def committing(self, key: str) -> None:
        """The event ``key`` is being handed to the buffer: an answer may come before
        :meth:`committed` (the buffer's worker is fast); keep it until then."""
        with self._lock:
            self._committing[key] = None

    def answered_early(self, key: str, answer: Answer) -> bool:
        """Keep an answer that came while ``key`` was being committed; whether it did."""
        with self._lock:
            if key not in self._committing:
                return False
            self._committing[key] = answer
            return True

    def committed(self, key: str) -> Answer | None:
        """The answer to event ``key`` that came while it was being committed, if one did."""
        with self._lock:
            return self._committing.pop(key, None)

    # -- round trips (see .pipeline) ----------------------------------------------------------

    def commands(self, ops: list[Op]) -> list[bytes]:
        """The ``EVALSHA`` of each operation, packed (the script and keys once per slot)."""
        heads = self._heads
        packed = []
        for op in ops:
            place = (op.name, op.slot, len(op.args))
            head = heads.get(place)
            if head is None:
                if len(heads) >= _MAX_HEADS:
                    heads.clear()
                count = 8 + len(op.args)
                head = heads[place] = pack_head(
                    count, "EVALSHA", SHAS[op.name], 5, *self.keys(op.slot)
                )
            packed.append(pack_tail(head, op.args))
        return packed

    def loads(self, client: Any, *, flushed: bool = False) -> list[bytes]:
        """``SCRIPT LOAD`` of every script, before the first round trip on ``client`` (so
        that none is refused ``NOSCRIPT`` while the calls after it run) and after Redis
        said it lost them (``flushed``); else none."""
        known = self._scripts
        if not flushed and known is not None and known[0] is client and known[1]:
            return []
        self._scripts = (client, SHAS)
        return [pack("SCRIPT", "LOAD", source) for source in SCRIPTS.values()]

    def settle(
        self, ops: list[Op], replies: list[Any], error: BaseException | None
    ) -> list[tuple[bool, Any]]:
        """Apply a round trip's replies (see :func:`.pipeline.settle`)."""
        return settle(ops, replies, error, self.failed)

    def defer_commit(self, slot: Slot, hold_id: str, quantity: int, key: str) -> bool:
        """Queue the ``COMMIT`` of a hold taken in Redis; whether to send what is pending
        now. When it runs, a hold found expired is warned about; when it cannot, the usage
        is in flight in the process instead."""

        def done(had: Any) -> None:
            if not had:
                self.committed_without_hold(slot[1])

        def fallback() -> None:
            with self._lock:
                if key in self._flights:
                    self._flights[key] = False
            self.memory.commit(slot, hold_id, quantity, key)

        self.flew(key, True)
        args = self.commit_args(hold_id, quantity, key)
        return self.pending.add(Op("commit", slot, args, done=done, fallback=fallback))

    def defer_answer(self, slot: Slot, key: str, answer: Answer) -> bool:
        """Queue what became of event ``key`` (see ``answered``); whether to send what is
        pending now. A refusal makes this process's entry ask the server at once."""
        outcome, usage = answer
        if outcome == "counted":
            name, args = "acknowledge", [key, "" if usage is None else usage]
        elif outcome == "refused":
            name, args = "refuse", [key]
            self.memory.refused(slot, key)
        else:
            name, args = "drop", [key]
        fallback = functools.partial(self.answer_in_memory, slot, key, answer)
        return self.pending.add(Op(name, slot, args, done=_ignore, fallback=fallback))

    def answer_in_memory(self, slot: Slot, key: str, answer: Answer) -> None:
        """What became of event ``key``, in the process's ledger."""
        outcome, usage = answer
        if outcome == "counted":
            self.memory.acknowledge(slot, key, usage)
        elif outcome == "refused":
            self.memory.refused(slot, key)
        else:
            self.memory.dropped(slot, key)


def _ignore(reply: Any) -> None:
    """An answer's reply tells nothing."""
