"""The transaction object every procedure handler gets: one open transaction, one caller.

A :class:`Store` is made by the engine for each call, with the connection (a transaction
already open), the caller's product id and the call's clock reading. It offers the lookups
that answer ``NOT_FOUND`` the same way everywhere, and the storage form of timestamps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .._ids import random_uuid
from ._errors import ProcedureError

__all__ = ["Store", "format_ts", "new_id", "parse_ts"]


def format_ts(moment: datetime) -> str:
    """The storage form of an aware datetime: fixed-width UTC ISO-8601, sortable as text."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_ts(stored: str | None) -> datetime | None:
    """Read back a timestamp written by :func:`format_ts` (``None`` stays ``None``)."""
    if stored is None:
        return None
    return datetime.fromisoformat(stored)


def new_id() -> str:
    """A fresh uuid4 string (ids of companies, contacts, links, ...)."""
    return random_uuid()


class Store:
    """One call's view of the database: connection, product, instant, and lookups."""

    __slots__ = ("_stamp", "conn", "now", "product")

    def __init__(
        self, conn: sqlite3.Connection, product: str, now: datetime, stamp: str | None = None
    ) -> None:
        """Bind to ``conn`` (inside a transaction), the caller's product and ``now`` (UTC);
        ``stamp`` is ``now`` in storage form when known already."""
        self.conn = conn
        """The SQLite connection; a transaction is open."""
        self.product = product
        """The caller's product id (a hash of its API key)."""
        self.now = now
        """The instant of this call (aware, UTC): every row written gets it."""
        self._stamp = stamp

    @property
    def stamp(self) -> str:
        """:attr:`now` in storage form (made when first needed: reads never need it)."""
        if self._stamp is None:
            self._stamp = format_ts(self.now)
        return self._stamp

    # -- SQL -----------------------------------------------------------------------------

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """First row of a query, or ``None``."""
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Every row of a query."""
        return self.conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run a statement (``cursor.rowcount`` tells how many rows it changed)."""
        return self.conn.execute(sql, params)

    # -- lookups that answer NOT_FOUND ---------------------------------------------------

    def company(self, company_id: str, columns: str = "*") -> sqlite3.Row:
        """The company (``columns`` of it), or ``NOT_FOUND``."""
        row = self.one(f"SELECT {columns} FROM companies WHERE id = ?", (company_id,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Company "{company_id}" not found')
        return row

    def linked_company(self, external_org_id: str) -> sqlite3.Row | None:
        """The company this product linked ``external_org_id`` to, if any."""
        return self.one(
            "SELECT c.* FROM product_links l JOIN companies c ON c.id = l.company_id"
            " WHERE l.product_id = ? AND l.external_org_id = ?",
            (self.product, external_org_id),
        )

    def linked_company_or_404(self, external_org_id: str) -> sqlite3.Row:
        """The company this product linked ``external_org_id`` to, or ``NOT_FOUND``."""
        row = self.linked_company(external_org_id)
        if row is None:
            raise ProcedureError(
                "NOT_FOUND", f'No company is linked to externalOrgId "{external_org_id}"'
            )
        return row

    def feature(self, code: str, columns: str = "*") -> sqlite3.Row:
        """The catalog feature (``columns`` of it), or ``NOT_FOUND``."""
        row = self.one(f"SELECT {columns} FROM features WHERE code = ?", (code,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Feature "{code}" not found')
        return row

    def tier(self, code: str) -> sqlite3.Row:
        """The catalog tier, or ``NOT_FOUND``."""
        row = self.one("SELECT * FROM tiers WHERE code = ?", (code,))
        if row is None:
            raise ProcedureError("NOT_FOUND", f'Tier "{code}" not found')
        return row
