"""The semantic engine of the local ChatarminOS: every procedure of the wire contract on SQLite.

:class:`LocalEngine` is transport-free: :meth:`LocalEngine.call` takes a procedure path, its
decoded input and the caller's API key and returns the decoded output (JSON-like values with
timezone-aware UTC ``datetime`` objects for timestamps) or raises :class:`ProcedureError`
carrying a tRPC error code. It authenticates, finds the procedure in the registry
(``local/procedures/``), validates the input with the procedure's schema and runs its handler
in one transaction: the HTTP layer only has to translate.

Calls run one at a time (a lock) and each in one transaction — a write transaction
(``BEGIN IMMEDIATE``) for mutations, a deferred, read-only one for queries — so concurrent
calls (threads, or processes sharing a database file) never exceed a usage limit or lose a
count, and a failing call leaves nothing behind. The mutations of one tRPC batch run in one
transaction (:meth:`LocalEngine.batch`), each call in a savepoint of its own: a failing call
still leaves nothing, the batch commits once (a batched event costs ~35 % less), and its
calls share one instant (one clock reading).

A database file runs in SQLite's WAL mode with ``synchronous=NORMAL`` by default: a call
that was answered survives the server process being killed; an operating-system crash or
power loss may lose the last calls before it (``synchronous="full"`` keeps those too, at a
cost per write). Readers never wait for a writer.

Where the wire contract is silent, this engine decides:

- Products: each API key is one product (identified by a hash of the key). Product links,
  ``links.reset`` and idempotency keys are per product; companies, contacts, feature
  access, usage and subscriptions are shared by all products.
- ``shortId`` is an ASCII slug of the name made unique with ``-2``, ``-3``, ...; it does
  not change when the company is renamed. ``domain: ""`` is stored as null.
- Smart linking compares scores rounded to one decimal; ``confidence`` is 100 for
  ``already_linked``, the score for ``linked``, null otherwise; ``suggestions`` is empty
  unless the status is ``suggestions``; ties keep the companies' creation order. Only
  companies found by index are scored: those of the hint's domains, those with the same
  normalised name, and at most 50 sharing the most of the name's rarer trigrams.
- A company without an access row reports ``source: "manual"``. ``validUntil`` equal to
  now counts as expired. ``remaining`` is not clamped (a lowered limit can make it < 0).
- ``billing.trackUsage`` on a feature that is not metered is ``BAD_REQUEST``; an
  idempotency key reused with another ``featureCode``, ``quantity`` or ``metadata`` is
  ``CONFLICT`` (see :mod:`chatarmin_os.local.procedures.billing`).
- ``tiers.applyTier`` replaces each tier feature's limits and ``configValues`` (then the
  overrides), clears ``validUntil``, keeps usage, and leaves features outside the tier alone.
- Stripe: a checkout session whose Stripe subscription is already recorded counts as
  claimed; ``linkSubscription`` trusts an id that is not in the catalog but starts with
  ``sub_`` as an active subscription (the local server cannot ask Stripe), refuses other
  unknown ids and a ``stripeCustomerId`` contradicting the catalog (``BAD_REQUEST``), and
  applies a tier only for ``active``/``trialing`` subscriptions.
- ``onboard``: see :func:`chatarmin_os.local.procedures.onboard.onboard`.
- Input: strings must be valid Unicode (no lone surrogates); free-form maps nest at most
  32 levels; timestamps follow the wire's grammar (``_wire.parse_datetime``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Literal

from .._procedures import PROCEDURES
from ._errors import ProcedureError
from ._registry import Procedure
from ._schema import catalog_is_empty, create_schema, dangling_references, write_catalog
from ._store import Store, format_ts, parse_ts
from .catalog import SeedError, default_catalog, normalize_catalog
from .procedures import REGISTRY

__all__ = ["DEFAULT_API_KEY", "PROCEDURES", "LocalEngine", "ProcedureError", "Synchronous"]

DEFAULT_API_KEY = "os_sk_local_dev"
"""The API key a local engine accepts when no keys are given."""

Synchronous = Literal["normal", "full"]
"""How hard a database file waits for the disk on each write (SQLite's ``synchronous``)."""


def _product_id(api_key: str) -> str:
    """The product an API key stands for: a hash of the key (the key is never stored)."""
    return "prod_" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:24]


def _system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(timezone.utc)


class LocalEngine:
    """Every procedure of the wire contract over a SQLite database.

    ``database`` is a file path (persisted across restarts and safe to share between
    processes), ``":memory:"`` (the default) or a ``file:`` URI. ``seed`` replaces the
    stored catalog (same format as a seed file, see :mod:`chatarmin_os.local.catalog`);
    without it an empty database gets the default catalog and an existing one keeps its
    own. Each of ``api_keys`` is a product: product links are per product, companies and
    contacts are shared. ``clock`` returns the current time (aware; naive = UTC).
    ``synchronous`` is the durability of a database file (see the module docstring).
    """

    def __init__(
        self,
        database: str = ":memory:",
        *,
        seed: Mapping[str, Any] | None = None,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        clock: Callable[[], datetime] | None = None,
        synchronous: Synchronous = "normal",
    ) -> None:
        """Open (creating if needed) the database and make sure it has a catalog."""
        if isinstance(api_keys, str):
            raise TypeError("api_keys must be an iterable of keys, not a single string")
        if synchronous not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', got {synchronous!r}")
        self._products = {
            hashlib.sha256(key.encode("utf-8")).hexdigest(): _product_id(key) for key in api_keys
        }
        self._clock = clock or _system_clock
        self._lock = threading.RLock()  # reentrant: calls run inside a batch()
        self._in_batch = False
        self._batch_moment: tuple[datetime, str] | None = None  # the batch's instant, stamp
        self._known: dict[str, str] = {}  # accepted API key -> product, so far
        self._private = database == ":memory:"
        catalog = normalize_catalog(seed, source="seed") if seed is not None else None
        conn = sqlite3.connect(
            database,
            timeout=30.0,
            check_same_thread=False,
            isolation_level=None,
            uri=database.startswith("file:"),
        )
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            # WAL for files (readers never block the writer, one fsync per checkpoint
            # instead of per commit); an in-memory database keeps its memory journal.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                create_schema(conn)
                if catalog is not None:
                    write_catalog(conn, catalog, replace=True)
                elif catalog_is_empty(conn):
                    write_catalog(conn, default_catalog(), replace=True)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    # -- the procedure entry point -------------------------------------------------------

    def call(self, path: str, input: Any, *, api_key: str | None) -> Any:
        """Run one procedure: authenticate, validate ``input``, run it in one transaction.

        Raises :class:`ProcedureError`: ``UNAUTHORIZED`` (missing or unknown key),
        ``NOT_FOUND`` (unknown path, or a missing company / feature / tier / ...),
        ``BAD_REQUEST`` (invalid input; the message names the field), and the codes of the
        contract's semantics (``FORBIDDEN``, ``PRECONDITION_FAILED``, ``CONFLICT``).
        """
        product = self.authenticate(api_key)
        procedure = REGISTRY.get(path)
        if procedure is None:
            raise ProcedureError("NOT_FOUND", f'No procedure found on path "{path}"')
        return self._run(procedure, product, procedure.parse(input))

    def authenticate(self, api_key: str | None) -> str:
        """The product id of an API key, or :class:`ProcedureError` ``UNAUTHORIZED``."""
        known = self._known.get(api_key) if isinstance(api_key, str) else None
        if known is not None:
            return known
        if api_key is None:
            raise ProcedureError("UNAUTHORIZED", "Missing API key")
        if not isinstance(api_key, str):
            raise ProcedureError("UNAUTHORIZED", "Invalid API key")
        digest = hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()
        product = self._products.get(digest)
        if product is None:
            raise ProcedureError("UNAUTHORIZED", "Invalid API key")
        self._known[api_key] = product
        return product

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run the mutations called inside in one transaction, each in a savepoint of its own.

        What a tRPC batch of mutations does here: a call that fails rolls back to its
        savepoint and leaves nothing, the others are committed together at the end (one
        commit instead of one per call), all at one instant (one clock reading). Other
        callers wait for the batch, as for one call.
        """
        with self._lock:
            if self._in_batch:  # nested: the outer batch holds the transaction
                yield
                return
            conn = self._open_conn()
            conn.execute("BEGIN IMMEDIATE")
            self._in_batch = True
            now = self._now()
            self._batch_moment = (now, format_ts(now))
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._in_batch = False
                self._batch_moment = None

    def _run(self, procedure: Procedure, product: str, args: dict[str, Any]) -> Any:
        with self._lock:
            conn = self._open_conn()
            if self._in_batch:
                assert self._batch_moment is not None
                store = Store(conn, product, *self._batch_moment)
                conn.execute("SAVEPOINT call")
                try:
                    result = procedure.handler(store, args)
                except BaseException:
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    raise
                conn.execute("RELEASE call")
                return result
            store = Store(conn, product, self._now())
            if procedure.kind == "query" and self._private:
                # Only this connection can see a private database, and the lock keeps
                # writers out: a read needs no transaction to see one consistent state.
                return procedure.handler(store, args)
            conn.execute("BEGIN IMMEDIATE" if procedure.kind == "mutation" else "BEGIN")
            try:
                result = procedure.handler(store, args)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return result

    def close(self) -> None:
        """Close the database (idempotent); later calls raise ``RuntimeError``."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> LocalEngine:
        """Use as a context manager that closes the engine on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the engine."""
        self.close()

    # -- test helpers --------------------------------------------------------------------

    def usage_events(
        self, company_id: str | None = None, feature_code: str | None = None
    ) -> list[dict[str, Any]]:
        """What ``billing.trackUsage`` accepted (duplicates and refusals are not events).

        Oldest first, optionally only one company's and/or one feature's; each
        ``{companyId, featureCode, quantity, idempotencyKey, metadata, createdAt}``.
        Usage belongs to companies, which all products share.
        """
        sql = "SELECT * FROM usage_events WHERE 1 = 1"
        params: list[str] = []
        if company_id is not None:
            sql += " AND company_id = ?"
            params.append(company_id)
        if feature_code is not None:
            sql += " AND feature_code = ?"
            params.append(feature_code)
        with self._lock:
            rows = self._open_conn().execute(sql + " ORDER BY seq", params).fetchall()
        return [
            {
                "companyId": row["company_id"],
                "featureCode": row["feature_code"],
                "quantity": row["quantity"],
                "idempotencyKey": row["idempotency_key"],
                "metadata": json.loads(row["metadata"]),
                "createdAt": parse_ts(row["created_at"]),
            }
            for row in rows
        ]

    def seed(self, data: Mapping[str, Any]) -> None:
        """Add or replace catalog entries (seed-file format) in the live database.

        Features and tiers with a known code are replaced in place (a tier's feature list
        as a whole), new ones appended; checkout sessions and Stripe subscriptions are
        upserted by id. References may point at entries already stored. Raises
        :class:`~chatarmin_os.local.catalog.SeedError` (nothing is stored) when invalid.
        """
        catalog = normalize_catalog(data, source="seed", partial=True)
        with self._lock:
            conn = self._open_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                write_catalog(conn, catalog, replace=False)
                problems = dangling_references(conn)
                if problems:
                    raise SeedError("seed: " + "; ".join(problems))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    # -- internals -----------------------------------------------------------------------

    def _open_conn(self) -> sqlite3.Connection:
        """The connection, or ``RuntimeError`` after :meth:`close`."""
        if self._conn is None:
            raise RuntimeError("this LocalEngine is closed")
        return self._conn

    def _now(self) -> datetime:
        """The clock's reading as an aware UTC datetime (a naive reading is taken as UTC)."""
        moment = self._clock()
        if moment.tzinfo is None or moment.utcoffset() is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)

    def __repr__(self) -> str:
        """``<LocalEngine open, 1 product(s)>``."""
        state = "closed" if self._conn is None else "open"
        return f"<LocalEngine {state}, {len(self._products)} product(s)>"
