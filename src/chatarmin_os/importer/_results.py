"""What happened to each row (:class:`RowResult`) and to the whole import (:class:`ImportSummary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .._exceptions import APIStatusError, ChatarminOSError

__all__ = ["ImportSummary", "RowResult", "RowStatus", "Stage"]

RowStatus = Literal["created", "linked", "already_linked", "failed"]
"""What happened to a row: ``onboard``'s link status, or ``"failed"``."""

Stage = Literal["validate", "lookup", "onboard", "contacts"]
"""Where a row failed: its checks, the linked-org look-up, ``onboard``, or the contacts."""

_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class RowResult:
    """What happened to one row."""

    row: int
    """Its position, from 1."""
    line: int | None
    """The line it starts on in its file, when known."""
    id: str | None
    """The org id, when the row has a readable one."""
    status: RowStatus
    """``"created"``, ``"linked"``, ``"already_linked"`` or ``"failed"``."""
    company_id: str | None = None
    """The ChatarminOS company, once known."""
    contacts_created: int = 0
    """Contacts of ``users`` created."""
    contacts_updated: int = 0
    """Contacts of ``users`` that existed and were updated."""
    stage: Stage | None = None
    """Where it failed (``None`` when it did not)."""
    error: ChatarminOSError | None = None
    """Why it failed (``None`` when it did not)."""

    @property
    def message(self) -> str | None:
        """A short, one-line description of the error (never the API key)."""
        if self.error is None:
            return None
        if isinstance(self.error, APIStatusError):
            text = self.error.message or str(self.error)
        else:
            text = str(self.error)
        text = " ".join(text.split())
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"

    def report_line(self) -> dict[str, Any]:
        """The failure report's JSON object for this row.

        ``{"row", "line", "id", "stage", "error" (the exception class), "code" (the tRPC
        code or ``null``), "message"}``.
        """
        return {
            "row": self.row,
            "line": self.line,
            "id": self.id,
            "stage": self.stage,
            "error": type(self.error).__name__ if self.error is not None else None,
            "code": getattr(self.error, "code", None),
            "message": self.message,
        }


@dataclass
class ImportSummary:
    """Counts of an import, and its failed rows; :meth:`add` one :class:`RowResult` at a time."""

    created: int = 0
    """Rows whose org got a new company."""
    linked: int = 0
    """Rows whose org was linked to a company that existed (smart-linked)."""
    already_linked: int = 0
    """Rows whose org id was linked already (a re-run, or ``skip_linked``)."""
    failed: int = 0
    """Rows that failed, invalid ones included."""
    contacts_created: int = 0
    """Contacts of ``users`` created."""
    contacts_updated: int = 0
    """Contacts of ``users`` updated."""
    not_started: int = 0
    """Rows never started because the import was stopped."""
    failures: list[RowResult] = field(default_factory=list)
    """The failed rows, in the order they failed."""
    stopped_by: ChatarminOSError | None = None
    """The error that stopped the import early (a refused key, a wrong base URL, an API that
    cannot be reached, ...), if any; :func:`~chatarmin_os.importer.stop_reason` says it in
    one line."""

    @property
    def done(self) -> int:
        """Rows finished, failed ones included."""
        return self.created + self.linked + self.already_linked + self.failed

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        if result.status == "created":
            self.created += 1
        elif result.status == "linked":
            self.linked += 1
        elif result.status == "already_linked":
            self.already_linked += 1
        else:
            self.failed += 1
            self.failures.append(result)
        self.contacts_created += result.contacts_created
        self.contacts_updated += result.contacts_updated
