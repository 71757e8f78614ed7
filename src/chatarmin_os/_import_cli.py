"""``chatarmin-os import FILE``: onboard organisations and their contacts from a file.

A client tool: it talks to ChatarminOS through :class:`AsyncChatarminOS` and loads nothing of
the local server. The work is done by :mod:`chatarmin_os.importer`; this module is the
command line around it: arguments, progress, the failure report, Ctrl-C and exit codes.

Exit codes: 0 every row imported; 1 a row failed (or, with ``--dry-run``, is invalid);
2 a usage error (bad flags, unreadable file, no API key); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, get_args

import anyio
import anyio.abc
import httpx

from ._async.client import AsyncChatarminOS
from ._base import DEFAULT_BASE_URL
from ._exceptions import ChatarminOSError
from .importer import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LABEL,
    ImportFileError,
    ImportFormat,
    ImportSummary,
    RowResult,
    SourceRow,
    check_organisations,
    decode_text,
    import_organisations,
    parse_organisations,
    read_organisations,
)

__all__ = ["add_parser", "execute"]

PROG = "chatarmin-os import"
MAX_CONCURRENCY = 100
STDIN_REPORT = "import.failed.jsonl"
SHOWN_FAILURES = 20
"""Failed rows described on stderr; the report file has them all."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DESCRIPTION = """\
Onboard organisations and their contacts from a JSON, JSON Lines or CSV file: per row,
onboard(external_org_id=id, label=LABEL, hints={company_name: name, domain, emails:
[adminEmail]}, tier_code=plan, contact_email=adminEmail, created_at=createdAt), then
contacts.bulk_upsert(users). Run it again to resume: linked orgs answer "already linked"
and contacts are matched by e-mail, so nothing is duplicated.
"""

EPILOG = f"""\
rows: id, name, domain, plan, adminEmail, createdAt, users[] (each email, name, role);
snake_case keys (admin_email, created_at) work too. JSON: an array, or
{{"organisations": [...]}}. JSON Lines: one row per line. CSV: a header row; the users
cell holds a JSON array.

The API key is read from OS_API_KEY, never from a flag (a flag would show in ps); the
endpoint from --base-url, else CHATARMIN_OS_BASE_URL, else {DEFAULT_BASE_URL}.

exit status: 0 all rows imported, 1 some row failed, 2 usage error, 130 interrupted.
"""


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_CONCURRENCY}, got {value}")
    return value


def _label(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add the ``import`` command to the ``chatarmin-os`` parser.

    Its parsed arguments carry ``run``: ``args.run(args)`` is :func:`execute`.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="onboard organisations and their contacts from a JSON, JSON Lines or CSV file",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the file to import; - reads stdin")
    parser.add_argument(
        "--format",
        choices=get_args(ImportFormat),
        help="the file's format (default: from its extension: .json, .jsonl/.ndjson, .csv)",
    )
    parser.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"rows in flight at once, 1 to {MAX_CONCURRENCY} (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--label",
        type=_label,
        default=DEFAULT_LABEL,
        help=f"product-link label of the imported orgs (default {DEFAULT_LABEL!r})",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check every row and send nothing (exit 1 when a row is invalid)",
    )
    parser.add_argument(
        "--report",
        metavar="PATH",
        help=(
            "where to write the failed rows, one JSON object per line (default "
            f"FILE.failed.jsonl, {STDIN_REPORT} for stdin); removed when nothing failed"
        ),
    )
    parser.add_argument(
        "--skip-linked",
        action="store_true",
        help=(
            "leave orgs that are linked already untouched (no onboard, their tier is not "
            "re-applied) and only upsert their users; costs one query per row"
        ),
    )
    parser.add_argument(
        "--base-url",
        help="API endpoint (default $CHATARMIN_OS_BASE_URL, else the hosted API)",
    )
    parser.set_defaults(run=execute)
    return parser


def _usage_error(stderr: IO[str], message: str) -> int:
    print(f"{PROG}: {message}", file=stderr)
    return EXIT_USAGE


def _read(args: argparse.Namespace) -> list[SourceRow]:
    format: ImportFormat | None = args.format
    if args.file == "-":
        if format is None:
            raise ImportFileError("reading stdin needs --format")
        return parse_organisations(decode_text(sys.stdin.buffer.read(), "stdin"), format)
    return read_organisations(args.file, format=format)


def execute(
    args: argparse.Namespace,
    *,
    http_client: httpx.AsyncClient | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    handle_signals: bool = True,
) -> int:
    """Run the command; ``http_client`` replaces the connection pool (tests, proxies).

    ``handle_signals=False`` leaves SIGINT/SIGTERM alone (for callers outside the main
    thread).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    started = time.monotonic()
    try:
        rows = _read(args)
    except ImportFileError as exc:
        return _usage_error(err, str(exc))
    from_stdin = args.file == "-"
    source = "stdin" if from_stdin else args.file
    report_path = Path(args.report or (STDIN_REPORT if from_stdin else f"{args.file}.failed.jsonl"))
    if not from_stdin and _same_file(report_path, Path(args.file)):
        return _usage_error(err, "--report must not be the input file")
    client: AsyncChatarminOS | None = None
    pool: httpx.AsyncClient | None = None
    if not args.dry_run:
        if http_client is None:
            pool = http_client = _pool(args.concurrency)
        try:
            client = AsyncChatarminOS(base_url=args.base_url, http_client=http_client)
        except ChatarminOSError as exc:
            return _usage_error(err, str(exc))
    try:
        report = _Report(report_path)
    except OSError as exc:
        return _usage_error(
            err, f"cannot write the report {str(report_path)!r}: {exc.strerror or exc}"
        )
    progress = _Progress(err, len(rows), counts=not args.dry_run)
    tally = ImportSummary()

    def on_result(result: RowResult) -> None:
        tally.add(result)
        if result.status == "failed":
            report.write(result)
        progress.update(result, tally)

    state = _RunState()
    try:
        if client is None:
            for failure in check_organisations(rows):
                on_result(failure)
        else:
            anyio.run(_import, client, pool, rows, args, on_result, progress, state, handle_signals)
    except KeyboardInterrupt:
        state.interrupted = True
    finally:
        progress.close()
        report.close(keep=tally.failed > 0)
    tally.not_started = len(rows) - tally.done
    tally.stopped_by = state.stopped_by
    elapsed = time.monotonic() - started
    if args.dry_run:
        print(_dry_run_summary(tally, source, len(rows), report_path), file=out)
    else:
        print(_summary(tally, source, len(rows), elapsed, report_path, state), file=out)
    if state.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if tally.failed or tally.stopped_by is not None else EXIT_OK


def _same_file(left: Path, right: Path) -> bool:
    try:
        return left.exists() and left.samefile(right)
    except OSError:
        return False


def _pool(concurrency: int) -> httpx.AsyncClient:
    """A connection pool with room for every row in flight (httpx's default holds 100)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits)


@dataclass
class _RunState:
    interrupted: bool = False
    stopped_by: ChatarminOSError | None = None


async def _import(
    client: AsyncChatarminOS,
    pool: httpx.AsyncClient | None,
    rows: list[SourceRow],
    args: argparse.Namespace,
    on_result: Callable[[RowResult], None],
    progress: _Progress,
    state: _RunState,
    handle_signals: bool,
) -> None:
    stop = anyio.Event()
    try:
        async with anyio.create_task_group() as watcher:
            with anyio.CancelScope() as rows_scope:
                if handle_signals:
                    await watcher.start(_watch_signals, stop, rows_scope, progress, state)
                summary = await import_organisations(
                    client,
                    rows,
                    label=args.label,
                    concurrency=args.concurrency,
                    skip_linked=args.skip_linked,
                    stop=stop,
                    on_result=on_result,
                )
                state.stopped_by = summary.stopped_by
            watcher.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await client.aclose()
            if pool is not None:
                await pool.aclose()


async def _watch_signals(
    stop: anyio.Event,
    rows_scope: anyio.CancelScope,
    progress: _Progress,
    state: _RunState,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Ctrl-C (or SIGTERM) once: start no more rows; twice: abandon the rows in flight."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for _ in signals:
            if not state.interrupted:
                state.interrupted = True
                stop.set()
                progress.note(
                    "Stopping: finishing the rows in flight (Ctrl-C again to abandon them)"
                )
            else:
                progress.note("Abandoning the rows in flight")
                rows_scope.cancel()
                return


class _Report:
    """The failure report: one JSON object per failed row, written as rows fail.

    UTF-8; a lone surrogate (an org id read from ``"\\ud800"`` in a JSON file, say) is
    written as its JSON escape ``\\ud800``, so the line stays valid JSON and reads back
    as the same string.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", encoding="utf-8", errors="backslashreplace")

    def write(self, result: RowResult) -> None:
        self._file.write(json.dumps(result.report_line(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self, *, keep: bool) -> None:
        """Close it; remove it when nothing failed (a stale report would mislead)."""
        self._file.close()
        if not keep:
            self.path.unlink(missing_ok=True)


def _describe(result: RowResult) -> str:
    where = f"row {result.row}"
    if result.line is not None:
        where += f", line {result.line}"
    if result.id is not None:
        where += f", id {result.id}"
    error = result.error
    kind = type(error).__name__
    code = getattr(error, "code", None)
    if code:
        kind += f" {code}"
    if result.stage == "validate":
        return f"failed {where}: {result.message}"
    return f"failed {where}: {result.stage}: {kind}: {result.message}"


class _Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise."""

    BAR_WIDTH = 30
    REDRAW_EVERY = 0.1
    LINE_EVERY = 5.0

    def __init__(
        self,
        stream: IO[str],
        total: int,
        *,
        tty: bool | None = None,
        counts: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``counts=False``: only the failed rows are shown (a dry run)."""
        self.stream = stream
        self.total = total
        self.counts = counts
        if tty is None:
            tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.tty = tty
        self.clock = clock
        self.started = clock()
        self.shown_failures = 0
        self.step = max(1, math.ceil(total / 10))
        self.next_line = self.step
        self.last_output = self.started
        self.bar = ""
        self.done = self.failed = 0

    def update(self, result: RowResult, tally: ImportSummary) -> None:
        """One more row finished."""
        self.done, self.failed = tally.done, tally.failed
        if result.status == "failed":
            if self.shown_failures < SHOWN_FAILURES:
                self.note(_describe(result))
            elif self.shown_failures == SHOWN_FAILURES:
                self.note("more failed rows: see the report")
            self.shown_failures += 1
        now = self.clock()
        if not self.counts:
            return
        if self.tty:
            if self.done == self.total or now - self.last_output >= self.REDRAW_EVERY:
                self._draw(now)
        elif self.done >= self.next_line or now - self.last_output >= self.LINE_EVERY:
            self.next_line = (self.done // self.step + 1) * self.step
            self.last_output = now
            self._write(f"{self.done}/{self.total} rows done, {self.failed} failed\n")

    def note(self, text: str) -> None:
        """A line of its own (the bar, if any, is redrawn under it)."""
        self._clear()
        self._write(text + "\n")
        if self.tty and self.counts and self.done:
            self._draw(self.clock())

    def close(self) -> None:
        """Take the bar off the screen (the summary follows on stdout)."""
        self._clear()

    def _draw(self, now: float) -> None:
        filled = self.BAR_WIDTH * self.done // self.total if self.total else self.BAR_WIDTH
        elapsed = now - self.started
        rate = f", {self.done / elapsed:.0f} rows/s" if elapsed > 0 else ""
        text = (
            f"[{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] {self.done}/{self.total} rows, "
            f"{self.failed} failed{rate}"
        )
        columns = shutil.get_terminal_size((80, 24)).columns
        self.bar = text[: max(10, columns - 1)]
        self._write("\r\x1b[K" + self.bar)
        self.last_output = now

    def _clear(self) -> None:
        if self.tty and self.bar:
            self._write("\r\x1b[K")
            self.bar = ""

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


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


def _summary(
    tally: ImportSummary,
    source: str,
    total: int,
    seconds: float,
    report_path: Path,
    state: _RunState,
) -> str:
    if state.interrupted:
        head = (
            f"Interrupted: {tally.done} of {total} rows of {source} done in {seconds:.1f} s; "
            "run the same command again to resume."
        )
    elif tally.stopped_by is not None:
        head = f"Stopped after {tally.done} of {total} rows of {source}: {tally.stopped_by}"
    else:
        head = f"Imported {source}: {total} rows in {seconds:.1f} s"
    return "\n".join([head, *_counts(tally, report_path)])


def _dry_run_summary(tally: ImportSummary, source: str, total: int, report_path: Path) -> str:
    text = (
        f"Dry run of {source}: {total} rows, {total - tally.failed} valid, "
        f"{tally.failed} invalid; nothing was sent."
    )
    if tally.failed:
        text += f"\nInvalid rows: see {report_path}"
    return text
