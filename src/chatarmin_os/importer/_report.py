"""What the import command leaves behind: the failure report file and the summary text."""

from __future__ import annotations

import json
from pathlib import Path

from .._exceptions import ChatarminOSError
from ._results import ImportSummary, RowResult

__all__ = ["Report", "dry_run_summary", "summary_text"]


class Report:
    """The failure report: one JSON object per failed row, written as rows fail.

    UTF-8; a lone surrogate (an org id read from ``"\\ud800"`` in a JSON file, say) is
    written as its JSON escape ``\\ud800``, so the line stays valid JSON and reads back
    as the same string.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", encoding="utf-8", errors="backslashreplace")

    def write(self, result: RowResult) -> None:
        """Add one failed row."""
        self._file.write(json.dumps(result.report_line(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self, *, keep: bool) -> None:
        """Close it; remove it when nothing failed (a stale report would mislead)."""
        self._file.close()
        if not keep:
            self.path.unlink(missing_ok=True)


def _counts(tally: ImportSummary, report_path: Path) -> list[str]:
    lines = [
        f"  {'created':<16}{tally.created:>6}",
        f"  {'linked':<16}{tally.linked:>6}",
        f"  {'already linked':<16}{tally.already_linked:>6}",
        f"  {'failed':<16}{tally.failed:>6}" + (f"   see {report_path}" if tally.failed else ""),
    ]
    if tally.not_started:
        lines.append(f"  {'not done':<16}{tally.not_started:>6}")
    lines.append(
        f"  {'contacts':<16}{tally.contacts_created:>6} created, {tally.contacts_updated} updated"
    )
    return lines


def summary_text(
    tally: ImportSummary,
    source: str,
    total: int,
    seconds: float,
    report_path: Path,
    *,
    interrupted: bool,
    stopped_by: ChatarminOSError | None,
) -> str:
    """The summary printed on stdout at the end of an import."""
    if interrupted:
        head = (
            f"Interrupted: {tally.done} of {total} rows of {source} done in {seconds:.1f} s; "
            "run the same command again to resume."
        )
    elif stopped_by is not None:
        head = f"Stopped after {tally.done} of {total} rows of {source}: {stopped_by}"
    else:
        head = f"Imported {source}: {total} rows in {seconds:.1f} s"
    return "\n".join([head, *_counts(tally, report_path)])


def dry_run_summary(tally: ImportSummary, source: str, total: int, report_path: Path) -> str:
    """The summary printed on stdout at the end of a dry run."""
    text = (
        f"Dry run of {source}: {total} rows, {total - tally.failed} valid, "
        f"{tally.failed} invalid; nothing was sent."
    )
    if tally.failed:
        text += f"\nInvalid rows: see {report_path}"
    return text
