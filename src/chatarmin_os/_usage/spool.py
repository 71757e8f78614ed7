"""Pending usage events in a SQLite file several processes may share: :class:`SpoolStore`."""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .._exceptions import ChatarminOSError
from .._logs import logger
from .events import UsageEvent

if TYPE_CHECKING:
    import sqlite3

__all__ = ["SpoolStore", "lease_seconds"]

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
    from .._wire import dumps, superjson_serialize

    if "metadata" not in payload:  # strings and an int: superjson would add nothing
        return dumps({"json": payload})
    return dumps(superjson_serialize(payload))


def _decode_row(text: str) -> dict[str, Any]:
    from .._wire import superjson_deserialize

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
