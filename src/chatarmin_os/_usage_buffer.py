"""The background usage buffer, the parts both clients share: options, events, stats, stores.

``billing.track_usage_later(...)`` validates its arguments, fixes the event's idempotency key
and puts the event in a store; the client's worker (``_async/_usage_buffer.py``, generated
into ``_sync/``) takes due events from the store and sends them as tRPC batches of
``billing.trackUsage`` calls. This module holds no network I/O and never waits:

* :class:`UsageBufferOptions`, :class:`UsageEvent`, :class:`UsageBufferStats` and the two
  errors, public;
* (``_validate.usage_payload`` is the one builder of a ``billing.trackUsage`` input:
  ``track_usage`` and ``track_usage_later`` both use it, and a client without a buffer never
  imports this module);
* :func:`classify`: what an error means for an event (sent again, refused for good, or a
  configuration problem that keeps it);
* the stores: :class:`MemoryStore` (a deque) and :class:`SpoolStore` (a SQLite file in WAL
  mode that several processes may share; rows are leased while being sent).

Every event carries a sequence number (the spool's row id) so ``flush()`` can wait for
"everything enqueued before now" without caring what came later.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import httpx

from ._base import retry_after, retry_delay
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ChatarminOSError,
    ConfigurationError,
    InvalidInputError,
)
from ._logs import logger

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "MemoryStore",
    "SpoolStore",
    "UnlinkedOrgError",
    "UsageBufferFullError",
    "UsageBufferOptions",
    "UsageBufferStats",
    "UsageEvent",
    "backoff_delay",
    "classify",
]

WhenFull = Literal["block", "drop"]

OnError = Callable[["UsageEvent", ChatarminOSError], None]
"""``on_error(event, error)``: told about every event that will never be counted."""


def _seconds(name: str, value: object, *, allow_none: bool = False, low: float = 0.0) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= 86_400
    ):
        extra = " or None" if allow_none else ""
        raise ConfigurationError(
            f"UsageBufferOptions.{name} must be seconds from {low:g} to 86400{extra}"
        )


@dataclass(frozen=True)
class UsageBufferOptions:
    """How ``billing.track_usage_later`` buffers usage events (``usage_buffer=`` of a client).

    Args:
        max_batch: the most events sent in one tRPC batch request (default 100; keep it at or
            below your server's batch limit). A batch leaves as soon as this many are waiting.
        flush_interval: seconds an event waits at most for others to fill its batch
            (default 1.0).
        max_pending: the most events waiting to be sent (default 100,000: about 40 MB in
            memory at worst); with a spool, the most rows in the spool file for this API key
            and URL.
        when_full: what ``track_usage_later`` does when ``max_pending`` events wait:
            ``"block"`` (default) waits up to ``block_timeout`` for room, ``"drop"`` does not
            wait. An event that finds no room is dropped: counted in ``stats().dropped``,
            given to ``on_error`` and logged, never raised.
        block_timeout: seconds ``"block"`` waits for room (default 1.0; ``None``: as long as
            it takes). Room is made by the worker sending; nothing else waits on the network.
        spool: a SQLite file (created when missing) that every event is written to before
            ``track_usage_later`` returns and removed from once ChatarminOS answered; events
            left by a crashed process are sent by the next one. ``None`` (default): memory only.
        spool_fsync: ``True`` makes every spool write durable against power loss too
            (SQLite ``synchronous=FULL``, an fsync per event); the default survives a crash
            or ``kill -9`` of the process, not of the machine.
        on_error: ``on_error(event, error)``, called for every event that will never be
            counted: refused by ChatarminOS (``PreconditionFailedError``,
            ``PermissionDeniedError``, ``NotFoundError``, ``BadRequestError``,
            ``ConflictError``, :class:`UnlinkedOrgError`) or dropped for lack of room
            (:class:`UsageBufferFullError`). Called from the worker (refusals) or the
            caller (drops); keep it quick. Without it, each such event is logged as a warning.
        close_timeout: seconds closing the client (or the interpreter's exit) waits for the
            buffer to empty and its worker to stop (default 10.0, well inside the usual 30 s
            a process manager gives a process to stop).
    """

    max_batch: int = 100
    flush_interval: float = 1.0
    max_pending: int = 100_000
    when_full: WhenFull = "block"
    block_timeout: float | None = 1.0
    spool: str | os.PathLike[str] | None = None
    spool_fsync: bool = False
    on_error: OnError | None = None
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name, high in (("max_batch", 1000), ("max_pending", 100_000_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigurationError(
                    f"UsageBufferOptions.{name} must be an int from 1 to {high:,}"
                )
        _seconds("flush_interval", self.flush_interval)
        _seconds("block_timeout", self.block_timeout, allow_none=True)
        _seconds("close_timeout", self.close_timeout)
        if self.when_full not in ("block", "drop"):
            raise ConfigurationError("UsageBufferOptions.when_full must be 'block' or 'drop'")
        if self.spool is not None and not isinstance(self.spool, (str, os.PathLike)):
            raise ConfigurationError("UsageBufferOptions.spool must be a file path or None")
        if self.spool is not None and not os.fspath(self.spool).strip():
            raise ConfigurationError("UsageBufferOptions.spool must not be empty")
        if not isinstance(self.spool_fsync, bool):
            raise ConfigurationError("UsageBufferOptions.spool_fsync must be a bool")
        if self.on_error is not None and not callable(self.on_error):
            raise ConfigurationError("UsageBufferOptions.on_error must be callable or None")

    @classmethod
    def resolve(cls, value: object) -> UsageBufferOptions | None:
        """``usage_buffer=`` as a client takes it: ``None`` or a :class:`UsageBufferOptions`."""
        if value is None or isinstance(value, UsageBufferOptions):
            return value
        raise ConfigurationError(
            f"usage_buffer must be a UsageBufferOptions or None, got {type(value).__name__}"
        )


class UsageBufferFullError(ChatarminOSError):
    """An event found the usage buffer full (``max_pending``) and was dropped."""


class UnlinkedOrgError(ChatarminOSError):
    """No company is linked to the ``external_org_id`` of a buffered event (refused for good)."""

    def __init__(self, external_org_id: str) -> None:
        self.external_org_id = external_org_id
        shown = external_org_id if len(external_org_id) <= 80 else external_org_id[:80] + "…"
        super().__init__(f"No company is linked to the external org id {shown!r}.")


class UsageEvent:
    """One usage event of the buffer: what ``on_error`` receives.

    ``company_id`` or ``external_org_id`` (the other is ``None``), ``feature_code``,
    ``quantity``, ``idempotency_key``, ``metadata``; ``created_at`` is when it was enqueued
    (seconds since the epoch), ``attempts`` how often it was sent without an answer.
    """

    __slots__ = ("attempts", "created_at", "payload", "seq")

    def __init__(
        self, payload: dict[str, Any], created_at: float, seq: int, attempts: int = 0
    ) -> None:
        self.payload = payload
        """The ``billing.trackUsage`` input (``externalOrgId`` until it is resolved)."""
        self.created_at = created_at
        self.seq = seq
        self.attempts = attempts

    @property
    def idempotency_key(self) -> str:
        """The key the server counts the event under (fixed when it was enqueued)."""
        return str(self.payload["idempotencyKey"])

    @property
    def company_id(self) -> str | None:
        """The company, when the event was given one."""
        return self.payload.get("companyId")

    @property
    def external_org_id(self) -> str | None:
        """Your org id, when the event was given one instead of a company id."""
        return self.payload.get("externalOrgId")

    @property
    def feature_code(self) -> str:
        """The metered feature."""
        return str(self.payload["featureCode"])

    @property
    def quantity(self) -> int:
        """How much was used."""
        return int(self.payload["quantity"])

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The event's metadata, if any."""
        return self.payload.get("metadata")

    def __repr__(self) -> str:
        who = (
            f"company_id={self.company_id!r}"
            if self.company_id is not None
            else f"external_org_id={self.external_org_id!r}"
        )
        return (
            f"UsageEvent({who}, feature_code={self.feature_code!r}, quantity={self.quantity}, "
            f"idempotency_key={self.idempotency_key!r})"
        )


@dataclass(frozen=True)
class UsageBufferStats:
    """What a usage buffer did so far (``client.usage_buffer.stats()``), in this process.

    ``pending`` counts events enqueued and not answered yet (with a spool: the rows in the
    spool file for this API key and URL, whoever wrote them); ``sent`` those ChatarminOS
    answered with a usage result, ``duplicates`` the part of them it had already counted (an
    earlier attempt's answer was lost); ``refused`` those refused for good; ``dropped`` those
    that found no room; ``retries`` how many times an event was sent again after a failed
    attempt. ``oldest_pending_age`` is the age in seconds of the oldest pending event, and
    ``last_error`` the last failure that is being retried (``None`` once a batch got through).
    """

    pending: int
    sent: int
    duplicates: int
    refused: int
    dropped: int
    retries: int
    oldest_pending_age: float | None
    last_error: str | None = None


# -- the payload ---------------------------------------------------------------------------


Outcome = Literal["refused", "retry", "auth"]


def classify(error: ChatarminOSError) -> Outcome:
    """What a failed send means for an event.

    ``"refused"``: ChatarminOS answered the call with a tRPC error of 4xx that is not about
    the request's timing or credentials (``PRECONDITION_FAILED``, ``FORBIDDEN``,
    ``NOT_FOUND``, ``BAD_REQUEST``, ``CONFLICT``, ...), bad input, or an unlinked org: never
    sent again. ``"auth"``: 401, a configuration problem: kept and retried, loudly.
    ``"retry"``: everything else (no answer, 408, 429, 5xx, a proxy's page, an answer that
    is no tRPC result): sent again, with the same key, after a backoff.
    """
    if isinstance(error, (InvalidInputError, UnlinkedOrgError)):
        return "refused"
    if isinstance(error, AuthenticationError):
        return "auth"
    if isinstance(error, APIStatusError):
        status = error.status_code
        if error.code is not None and 400 <= status < 500 and status not in (408, 429):
            return "refused"
    return "retry"


_REPEATED_PATH = re.compile(r"\b([A-Za-z][\w]*\.[\w.]+)((?:,\1\b)+)")


def describe(error: ChatarminOSError) -> str:
    """``"ClassName: message"``, a batch's repeated procedure path said once, at most 300
    characters (for the log and ``stats().last_error``)."""

    def once(match: re.Match[str]) -> str:
        return f"{match.group(1)} x{match.group(2).count(',') + 1}"

    message = error.message if isinstance(error, APIConnectionError) else str(error)
    text = f"{type(error).__name__}: {_REPEATED_PATH.sub(once, message)}"
    return text if len(text) <= 300 else text[:299] + "…"


BACKOFF_START = 0.1
"""Seconds before the second retry in a row of a failed batch (the first is at once)."""


def backoff_delay(failures: int, headers: httpx.Headers | None) -> float:
    """Seconds to wait after the ``failures``-th failed round in a row.

    A usable ``Retry-After`` (or ``retry-after-ms``, 0 to 60 s) from the answer wins. Else
    the first failure is retried at once (a lost answer or a reset connection is a blip, and
    the keys make a repeat harmless), then the client's backoff from 0.1 s: doubling up to
    8 s, up to 25 % less at random so processes that failed together do not retry together
    (a ``Retry-After`` asking for more than 60 s, or unreadable, does not stop the growth).
    """
    after = retry_after(headers)
    if after is not None:
        return after
    if failures <= 1:
        return 0.0
    return retry_delay(failures - 2, None, initial=BACKOFF_START)


# -- stores --------------------------------------------------------------------------------


class Store(Protocol):
    """Where pending events wait. Every method is called under the buffer's lock."""

    def add(self, payload: dict[str, Any], now: float) -> None: ...
    def has_room(self, max_pending: int) -> bool: ...
    def waiting(self) -> int: ...
    def take(self, now: float, limit: int, interval: float, upto: int) -> list[UsageEvent]: ...
    def next_due(self, now: float, interval: float) -> float | None: ...
    def settle(self, done: list[UsageEvent], again: list[UsageEvent]) -> None: ...
    def last_seq(self) -> int: ...
    def unresolved_upto(self, seq: int) -> int: ...
    def pending(self) -> int: ...
    def oldest(self) -> float | None: ...
    def has_leftovers(self) -> bool: ...
    def after_fork(self) -> None: ...
    def close(self) -> None: ...


_Row: TypeAlias = "tuple[float, int, int]"
"""What the memory store keeps of a waiting event besides its payload: created_at, seq,
attempts (a :class:`UsageEvent` is made only for the events in flight)."""


class MemoryStore:
    """Pending events in memory, in enqueue (seq) order, the batches in flight aside.

    Two deques in step, the payloads and the rest, rather than one of ``(payload, ...)``
    tuples: a dict of plain values and a tuple of numbers are both left alone by Python's
    garbage collector, but a tuple holding a dict is tracked for good, and with 100,000
    events waiting (ChatarminOS down) each full collection then scanned them all, a pause of
    tens of milliseconds in whichever thread was enqueueing.
    """

    def __init__(self) -> None:
        self._payloads: deque[dict[str, Any]] = deque()
        self._rows: deque[_Row] = deque()
        self._in_flight: list[UsageEvent] = []
        self._seq = 0

    def add(self, payload: dict[str, Any], now: float) -> None:
        """Append an event."""
        self._seq += 1
        self._payloads.append(payload)
        self._rows.append((now, self._seq, 0))

    def has_room(self, max_pending: int) -> bool:
        """Whether one more event fits."""
        return len(self._rows) + len(self._in_flight) < max_pending

    def waiting(self) -> int:
        """Events waiting (not in flight)."""
        return len(self._rows)

    def take(self, now: float, limit: int, interval: float, upto: int) -> list[UsageEvent]:
        """The next batch when one is due (full, old enough, or asked for by a flush)."""
        rows = self._rows
        if not rows:
            return []
        created_at, seq, _ = rows[0]
        if len(rows) < limit and created_at > now - interval and seq > upto:
            return []
        payload, row = self._payloads.popleft, rows.popleft
        batch = [UsageEvent(payload(), *row()) for _ in range(min(limit, len(rows)))]
        self._in_flight.extend(batch)
        return batch

    def next_due(self, now: float, interval: float) -> float | None:
        """Seconds until the oldest waiting event is due; ``None`` when none waits."""
        if not self._rows:
            return None
        return max(0.0, self._rows[0][0] + interval - now)

    def settle(self, done: list[UsageEvent], again: list[UsageEvent]) -> None:
        """Forget answered events; put the others back in front, in seq order."""
        finished = {id(event) for event in done} | {id(event) for event in again}
        self._in_flight = [event for event in self._in_flight if id(event) not in finished]
        if not again:
            return
        back = [(e.payload, (e.created_at, e.seq, e.attempts + 1)) for e in again]
        rows = self._rows
        if rows and back[-1][1][1] > rows[0][1]:  # another batch came back first: merge
            merged = sorted(
                [*back, *zip(self._payloads, rows, strict=True)], key=lambda item: item[1][1]
            )
            self._payloads = deque(payload for payload, _ in merged)
            self._rows = deque(row for _, row in merged)
        else:
            self._payloads.extendleft([payload for payload, _ in reversed(back)])
            rows.extendleft([row for _, row in reversed(back)])

    def last_seq(self) -> int:
        """The sequence number of the last event enqueued (0: none yet)."""
        return self._seq

    def unresolved_upto(self, seq: int) -> int:
        """How many events numbered up to ``seq`` are still pending."""
        count = sum(1 for event in self._in_flight if event.seq <= seq)
        rows = self._rows
        if rows and rows[-1][1] <= seq:
            return count + len(rows)
        for row in rows:
            if row[1] > seq:
                break
            count += 1
        return count

    def pending(self) -> int:
        """Events enqueued and not answered."""
        return len(self._rows) + len(self._in_flight)

    def oldest(self) -> float | None:
        """When the oldest pending event was enqueued."""
        times = [event.created_at for event in self._in_flight]
        if self._rows:
            times.append(self._rows[0][0])
        return min(times) if times else None

    def has_leftovers(self) -> bool:
        """Memory holds nothing from an earlier process."""
        return False

    def after_fork(self) -> None:
        """The parent's events are the parent's to send."""
        self._payloads = deque()
        self._rows = deque()
        self._in_flight = []

    def close(self) -> None:
        """Nothing to close."""


# The connections of a spool inherited through fork(): never closed in the child (closing
# could checkpoint or unlink the parent's WAL) and never collected (which would close them).
_ABANDONED: list[sqlite3.Connection] = []

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dest TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS usage_spool_dest ON usage_spool (dest, id);
"""

_OWNER_CHECK_EVERY = 2.0  # seconds between looks for rows leased by processes that died
_FOREIGN_POLL = 0.5  # seconds between looks at rows another live process is sending


def _process_owner() -> str:
    """This process as a lease owner: host, pid and a token new in every process."""
    global _owner_pid, _owner
    pid = os.getpid()
    if _owner_pid != pid:
        _owner_pid, _owner = pid, f"{socket.gethostname()}|{pid}|{os.urandom(6).hex()}"
    return _owner


_owner_pid = -1
_owner = ""


def _owner_is_gone(owner: str) -> bool:
    """Whether the process holding a lease is certainly dead (same host, pid gone or reused)."""
    host, _, rest = owner.partition("|")
    pid_text, _, _token = rest.partition("|")
    if host != socket.gethostname() or os.name != "posix":
        return False  # another machine or container: wait for the lease to expire
    try:
        pid = int(pid_text)
    except ValueError:
        return True
    if pid == os.getpid():
        return owner != _process_owner()  # an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (another user's): alive
    try:  # a zombie (killed, not yet reaped) holds its pid but sends nothing
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[:1] == ["Z"]
    except OSError:
        return False


def _encode_row(payload: dict[str, Any]) -> str:
    from ._wire import dumps, superjson_serialize

    if "metadata" not in payload:  # strings and an int: superjson would add nothing
        return dumps({"json": payload})
    return dumps(superjson_serialize(payload))


def _decode_row(text: str) -> dict[str, Any]:
    from ._wire import superjson_deserialize

    value = superjson_deserialize(json.loads(text))
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


class SpoolStore:
    """Pending events in a SQLite file (WAL), durable before ``track_usage_later`` returns.

    One table, ``usage_spool``: a row per event (its input as superjson text, so timestamps
    in metadata come back as they went in), keyed by ``dest`` (a hash of the base URL and API
    key, so clients for other servers or products sharing the file never send each other's
    rows). A worker claims due rows by leasing them (``owner``, ``lease_until``) in one
    ``BEGIN IMMEDIATE`` transaction, so two processes never send the same row at once; rows
    leased by a process that died are taken over at once when it ran on this host, else
    when the lease ends. A row is deleted once ChatarminOS answered it.
    """

    def __init__(self, path: str | os.PathLike[str], dest: str, *, fsync: bool, lease: float):
        self.path = os.fspath(path)
        self._dest = dest
        self._fsync = fsync
        self._lease = lease
        self._conn: sqlite3.Connection | None = None
        self._count = -1  # rows for dest as last counted plus those added since; -1: unknown
        self._last_owner_check = -math.inf

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        import sqlite3

        try:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ChatarminOSError(f"Cannot open the usage spool {self.path!r}: {exc}") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise ChatarminOSError(
                    f"The usage spool {self.path!r} was written by another version "
                    f"(format {version}); give a new path."
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.executescript(_SCHEMA)  # commits
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            conn.close()
            raise ChatarminOSError(f"Cannot use the usage spool {self.path!r}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _error(self, exc: Exception) -> ChatarminOSError:
        return ChatarminOSError(f"The usage spool {self.path!r} failed: {exc}")

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """The connection; a SQLite failure becomes a ``ChatarminOSError``."""
        import sqlite3

        try:
            yield self._db()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def add(self, payload: dict[str, Any], now: float) -> None:
        """Write an event (committed before this returns)."""
        import sqlite3

        text = _encode_row(payload)
        try:
            self._db().execute(
                "INSERT INTO usage_spool (dest, payload, created) VALUES (?, ?, ?)",
                (self._dest, text, now),
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if self._count >= 0:
            self._count += 1

    def _recount(self) -> int:
        with self._guard() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM usage_spool WHERE dest = ?", (self._dest,)
            ).fetchone()
        self._count = int(row[0])
        return self._count

    def has_room(self, max_pending: int) -> bool:
        """Whether the spool holds fewer than ``max_pending`` rows for us (counted when near)."""
        if 0 <= self._count < max_pending:
            return True
        return self._recount() < max_pending

    def waiting(self) -> int:
        """Rows as last counted (a hint for waking the worker, not exact)."""
        return max(self._count, 0)

    def _free_dead_leases(self, now: float) -> None:
        if now - self._last_owner_check < _OWNER_CHECK_EVERY:
            return
        self._last_owner_check = now
        db = self._db()
        owners = db.execute(
            "SELECT DISTINCT owner FROM usage_spool WHERE dest = ? AND owner IS NOT NULL "
            "AND owner != ? AND lease_until >= ?",
            (self._dest, _process_owner(), now),
        ).fetchall()
        for (owner,) in owners:
            if _owner_is_gone(owner):
                db.execute(
                    "UPDATE usage_spool SET owner = NULL, lease_until = NULL WHERE owner = ?",
                    (owner,),
                )

    def take(self, now: float, limit: int, interval: float, upto: int) -> list[UsageEvent]:
        """Lease the next due batch (full, old enough, or asked for by a flush)."""
        with self._guard() as db:
            self._free_dead_leases(now)
            db.execute("BEGIN IMMEDIATE")
            try:
                count, first_id, first_created = db.execute(
                    "SELECT COUNT(*), MIN(id), MIN(created) FROM usage_spool WHERE dest = ? "
                    "AND (owner IS NULL OR lease_until < ?)",
                    (self._dest, now),
                ).fetchone()
                if not count or (
                    count < limit and first_created > now - interval and first_id > upto
                ):
                    db.execute("COMMIT")
                    return []
                rows = db.execute(
                    "SELECT id, payload, created, attempts FROM usage_spool WHERE dest = ? "
                    "AND (owner IS NULL OR lease_until < ?) ORDER BY id LIMIT ?",
                    (self._dest, now, limit),
                ).fetchall()
                db.executemany(
                    "UPDATE usage_spool SET owner = ?, lease_until = ? WHERE id = ?",
                    [(_process_owner(), now + self._lease, row[0]) for row in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        events = []
        broken = []
        for row_id, text, created, attempts in rows:
            try:
                events.append(UsageEvent(_decode_row(text), created, row_id, attempts))
            except (ValueError, TypeError) as exc:
                broken.append(row_id)
                logger.error(
                    "Usage spool %s: row %d is unreadable (%s); removed", self.path, row_id, exc
                )
        if broken:
            self._delete(broken)
        return events

    def next_due(self, now: float, interval: float) -> float | None:
        """Seconds until the oldest claimable row is due; ``None`` when there is none.

        Rows leased by another live process are looked at again within a few seconds
        (that process may die and leave them).
        """
        with self._guard() as db:
            row = db.execute(
                "SELECT MIN(CASE WHEN owner IS NULL OR lease_until < ? THEN created END), "
                "MIN(lease_until) FROM usage_spool WHERE dest = ?",
                (now, self._dest),
            ).fetchone()
        first_created, first_lease = row
        if first_created is not None:
            return float(max(0.0, first_created + interval - now))
        if first_lease is not None:
            return float(min(max(0.0, first_lease - now), _FOREIGN_POLL))
        return None

    def _delete(self, ids: list[int]) -> None:
        with self._guard() as db:
            db.executemany("DELETE FROM usage_spool WHERE id = ?", [(i,) for i in ids])

    def settle(self, done: list[UsageEvent], again: list[UsageEvent]) -> None:
        """Delete answered rows; release the others (one more attempt) for a later round."""
        with self._guard() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._delete([event.seq for event in done])
                db.executemany(
                    "UPDATE usage_spool SET owner = NULL, lease_until = NULL, "
                    "attempts = attempts + 1 WHERE id = ?",
                    [(event.seq,) for event in again],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._recount()

    def last_seq(self) -> int:
        """The highest row id for us now (0: none)."""
        with self._guard() as db:
            row = db.execute(
                "SELECT MAX(id) FROM usage_spool WHERE dest = ?", (self._dest,)
            ).fetchone()
        return int(row[0] or 0)

    def unresolved_upto(self, seq: int) -> int:
        """Rows for us with an id up to ``seq`` still in the spool."""
        with self._guard() as db:
            row = db.execute(
                "SELECT COUNT(*) FROM usage_spool WHERE dest = ? AND id <= ?", (self._dest, seq)
            ).fetchone()
        return int(row[0])

    def pending(self) -> int:
        """Rows for us in the spool, whoever wrote them."""
        return self._recount()

    def oldest(self) -> float | None:
        """When the oldest row for us was written."""
        with self._guard() as db:
            row = db.execute(
                "SELECT MIN(created) FROM usage_spool WHERE dest = ?", (self._dest,)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def has_leftovers(self) -> bool:
        """Whether rows for us wait in the spool (left by an earlier or another process)."""
        return self._recount() > 0

    def after_fork(self) -> None:
        """Keep the parent's connection untouched; open our own on first use."""
        if self._conn is not None:
            _ABANDONED.append(self._conn)
        self._conn = None
        self._count = -1
        self._last_owner_check = -math.inf

    def close(self) -> None:
        """Close the connection (opened again if used later)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def lease_seconds(timeout: object) -> float:
    """How long a spool row stays leased by a sender: well past a request's timeout."""
    seconds: list[float] = []
    if isinstance(timeout, (int, float)):
        seconds.append(float(timeout))
    else:
        for name in ("connect", "read", "write", "pool"):
            value = getattr(timeout, name, None)
            if isinstance(value, (int, float)):
                seconds.append(float(value))
            elif timeout is not None:
                return 600.0  # some phase may wait for ever
    if not seconds:
        return 600.0
    return max(60.0, 3 * sum(seconds))


class Counters:
    """The running totals behind :class:`UsageBufferStats` (mutated under the buffer's lock)."""

    __slots__ = ("dropped", "duplicates", "last_error", "refused", "retries", "sent")

    def __init__(self) -> None:
        self.sent = self.duplicates = self.refused = self.dropped = self.retries = 0
        self.last_error: str | None = None


def report(
    on_error: OnError | None, event: UsageEvent, error: ChatarminOSError, *, what: str
) -> None:
    """Tell ``on_error`` (or the log) about an event that will never be counted."""
    if on_error is None:
        logger.warning("Usage event %r %s: %s: %s", event, what, type(error).__name__, error)
        return
    try:
        on_error(event, error)
    except Exception:
        logger.exception("chatarmin_os: the usage buffer's on_error raised")
