"""How the ledger talks to Redis: one round trip for what is pending and the call at hand.

A round trip to Redis costs far more than the ledger's scripts do there, so the ledger
defers what may safely wait and sends it with the next call that needs an answer, all
pipelined on one connection (``EVALSHA`` after ``EVALSHA``, one write, the replies read
in order). A reservation then costs one round trip: its ``HOLD``, carrying the ``COMMIT``
of the previous one and the ``ACKNOWLEDGE`` of what the server answered meanwhile.

What waits, and why it is safe (the quota's guarantee is "admitted <= limit across every
process sharing the Redis"):

* a ``COMMIT`` (hold -> in flight): until it runs, the hold still counts as held;
* an answer (``ACKNOWLEDGE``/``REFUSE``/``DROP`` of a metered event): until it runs, the
  usage still counts as in flight (a refusal makes this process ask the server at once; the
  others a moment later).

Both only ever count too much for a moment, never too little, as long as they run before
the hold or the flight they end would expire. They are sent, in the order they were made,
with the next of: any ledger call of this process (hold, load, release, figures), the usage
buffer's next send attempt (after it settles each batch, answered or failed: within
``flush_interval``, or its backoff of at most 8 s, 60 s when the server asks for it with
``Retry-After``), ``client.flush()`` and closing the client. Besides, a call finding
:data:`PENDING_CAP` operations pending, or one pending longer than a quarter of
``min(hold_timeout, flight_timeout)``, waits to send them first. Only one round trip at a
time carries pending operations (so a commit always reaches Redis before the answer to its
event); a call that finds another one sending them goes on its own.

Failures: operations whose round trip fails are done in the process instead, exactly as a
failing call is (:class:`~chatarmin_os._ledger.memory.MemoryLedger`, ``failed`` told); the
replies read before the failure stand. Those refused with ``NOSCRIPT`` (Redis restarted,
``SCRIPT FLUSH``) did not run: the scripts are loaded and only those are sent again (a
``HOLD`` never runs twice).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from .memory import Slot

__all__ = [
    "PENDING_CAP",
    "Op",
    "Pending",
    "connection_args",
    "not_run",
    "pack",
    "pack_head",
    "pack_tail",
    "script_shas",
    "settle",
]

PENDING_CAP = 256
"""Pending operations at which the next call sends them before going on."""


class Op:
    """One script call: ``done(reply)`` when Redis answered it, ``fallback()`` when it did
    not run there (then it is done in the process). A call made now has neither: its reply
    is returned to the caller."""

    __slots__ = ("args", "done", "fallback", "name", "since", "slot")

    def __init__(
        self,
        name: str,
        slot: Slot,
        args: list[Any],
        *,
        done: Callable[[Any], None] | None = None,
        fallback: Callable[[], None] | None = None,
        since: float = 0.0,
    ) -> None:
        self.name = name
        self.slot = slot
        self.args = args
        self.done = done
        self.fallback = fallback
        self.since = since

    def __repr__(self) -> str:
        return f"<Op {self.name}>"


class Pending:
    """The operations deferred until the next round trip, in order (thread-safe).

    One sender at a time takes them (:meth:`take`, then :meth:`sent` once their replies are
    read): what was deferred reaches Redis in the order it was made.
    """

    def __init__(
        self, *, max_age: float, cap: int = PENDING_CAP, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age = max_age
        self.cap = cap
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Drop everything (a forked child: the parent sends its own)."""
        self._ops: list[Op] = []
        self._lock = threading.Lock()
        self._sending = threading.Lock()

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"<Pending {len(self._ops)}>"

    def add(self, op: Op) -> bool:
        """Defer ``op``; whether the caller should send what is pending now."""
        op.since = self._clock()
        with self._lock:
            self._ops.append(op)
        return self.due()

    def due(self) -> bool:
        """Whether what is pending must be sent before the next call goes on."""
        ops = self._ops
        return bool(ops) and (len(ops) >= self.cap or self._clock() - ops[0].since >= self.max_age)

    def take(self) -> list[Op] | None:
        """The pending operations, claimed for sending (call :meth:`sent` after); ``None``
        when there are none or another round trip is sending some."""
        if not self._ops or not self._sending.acquire(blocking=False):
            return None
        with self._lock:
            ops, self._ops = self._ops, []
        if not ops:
            self._sending.release()
            return None
        return ops

    def sent(self) -> None:
        """The operations :meth:`take` gave were answered (or done in the process)."""
        self._sending.release()


def script_shas(scripts: dict[str, str]) -> dict[str, str]:
    """The SHA1 of each script (what ``EVALSHA`` names it by)."""
    return {name: hashlib.sha1(source.encode()).hexdigest() for name, source in scripts.items()}


def _bulk(value: Any) -> bytes:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode()
    else:  # a number, as redis-py sends it
        data = repr(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(*args: Any) -> bytes:
    """One command in the Redis protocol (what ``send_packed_command`` sends)."""
    return b"*%d\r\n%b" % (len(args), b"".join(map(_bulk, args)))


def pack_tail(head: bytes, args: list[Any]) -> bytes:
    """A command whose first arguments were packed as ``head`` (their count included)."""
    return head + b"".join(map(_bulk, args))


def pack_head(count: int, *args: Any) -> bytes:
    """The start of a command of ``count`` arguments: ``args``, packed."""
    return b"*%d\r\n%b" % (count, b"".join(map(_bulk, args)))


_LEGACY: dict[type, tuple[str, ...]] = {}


def connection_args(pool: Any) -> tuple[str, ...]:
    """What ``pool.get_connection`` takes: nothing since redis-py 5.3 (which warns about
    arguments), a command name before (where it was required)."""
    kind = type(pool)
    args = _LEGACY.get(kind)
    if args is None:
        import inspect

        try:
            name = inspect.signature(pool.get_connection).parameters.get("command_name")
        except (TypeError, ValueError):
            name = None
        needed = name is not None and name.default is inspect.Parameter.empty
        args = _LEGACY[kind] = ("EVALSHA",) if needed else ()
    return args


def not_run(replies: list[Any]) -> list[int]:
    """Where the replies say ``NOSCRIPT``: those calls did not run (send them again)."""
    from redis.exceptions import NoScriptError

    return [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def settle(
    ops: list[Op],
    replies: list[Any],
    error: BaseException | None,
    failed: Callable[[str, BaseException], None],
) -> list[tuple[bool, Any]]:
    """Apply a round trip's ``replies`` (fewer than ``ops`` when it failed with ``error``,
    or without Redis): deferred operations are done (or done in the process); the calls
    made now get ``(ran in Redis, reply)``, in order."""
    results: list[tuple[bool, Any]] = []
    told = False
    for index, op in enumerate(ops):
        reply = replies[index] if index < len(replies) else error
        ran = index < len(replies) and not isinstance(reply, BaseException)
        if not ran:
            if isinstance(reply, BaseException) and not (told and reply is error):
                told = told or reply is error
                failed(op.name, reply)
            if op.fallback is not None:
                op.fallback()
        elif op.done is not None:
            op.done(reply)
        if op.done is None and op.fallback is None:
            results.append((ran, reply if ran else None))
    return results
