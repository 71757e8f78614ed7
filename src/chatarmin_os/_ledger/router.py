"""Non-waiting parts of the ledger front both twins share: arguments of each script, and
which ledger (Redis or this process) holds what."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .memory import MemoryLedger, Slot
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

_MAX_REMEMBERED = 100_000

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

    def after_fork_in_child(self) -> None:
        """A forked child forgets the parent's connection and flights."""
        self._scripts = None
        self._flights = {}
        self._committing = {}
        self._lock = threading.Lock()
        self.memory.after_fork_in_child()

    @property
    def shared(self) -> bool:
        """Whether the ledger is in Redis (when Redis answers)."""
        return self._keys is not None

    def scripts(self) -> dict[str, Any] | None:
        """The registered scripts of the Redis client to use now, or ``None``."""
        if self._keys is None or self._connect is None:
            return None
        client = self._connect()
        if client is None:
            return None
        known = self._scripts
        if known is None or known[0] is not client:
            known = (client, {n: client.register_script(s) for n, s in SCRIPTS.items()})
            self._scripts = known
        return known[1]

    def keys(self, slot: Slot) -> list[str]:
        assert self._keys is not None
        return self._keys.slot(*slot)

    def failed(self, what: str, error: BaseException) -> None:
        if self._failed is not None:
            self._failed(f"ledger {what}", error)

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
        expires = self._wall() + self.memory.flight_timeout
        return [hold_id, quantity, key, expires, self._idle_ms]

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
