"""``chatarmin-os import FILE``: onboard organisations and their contacts from a file.

A client tool: it talks to ChatarminOS through :class:`AsyncChatarminOS` (its own connection
pool) and loads nothing of the local server. The work is done by :mod:`chatarmin_os.importer`;
this module is the command line around it: arguments, Ctrl-C and exit codes (progress and the
report live in ``_progress`` and ``_report``). An error that would fail every row (a wrong
base URL, a refused key) stops the run with one line on stderr naming the cause and the URL.

Exit codes: 0 every row imported; 1 a row failed (or, with ``--dry-run``, is invalid);
2 a usage error (bad flags, unreadable file, no API key); 130 interrupted.
"""

from __future__ import annotations

import argparse
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

from .._async.client import AsyncChatarminOS
from .._base import DEFAULT_BASE_URL
from .._exceptions import ChatarminOSError
from .._explain import is_run_wide, stop_reason
from ._progress import Progress
from ._reading import (
    ImportFileError,
    ImportFormat,
    SourceRow,
    decode_text,
    parse_organisations,
    read_organisations,
)
from ._report import Report, dry_run_summary, summary_text
from ._results import ImportSummary, RowResult
from ._running import DEFAULT_CONCURRENCY, DEFAULT_LABEL, check_organisations, import_organisations

__all__ = ["add_parser", "execute"]

PROG = "chatarmin-os import"
MAX_CONCURRENCY = 100
STDIN_REPORT = "import.failed.jsonl"
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

CSV headers are matched ignoring case; a file separated by ';' or tabs is recognised.

The API key is read from OS_API_KEY, never from a flag (a flag would show in ps); the
endpoint from --base-url, else CHATARMIN_OS_BASE_URL, else {DEFAULT_BASE_URL}.

exit status: 0 all rows imported, 1 some row failed or the run stopped (a wrong\nbase URL or key: one line says which), 2 usage error, 130 interrupted.
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


def _for_the_command_line(message: str) -> str:
    """A client's configuration message, worded for a shell user (no ``api_key=...``)."""
    return message.replace("pass api_key=... or set the OS_API_KEY", "set the OS_API_KEY")


def _read(args: argparse.Namespace, note: Callable[[str], None]) -> list[SourceRow]:
    format: ImportFormat | None = args.format
    if args.file == "-":
        if format is None:
            raise ImportFileError("reading stdin needs --format")
        text = decode_text(sys.stdin.buffer.read(), "stdin")
        return parse_organisations(text, format, source="stdin", note=note)
    return read_organisations(args.file, format=format, note=note)


def execute(
    args: argparse.Namespace,
    *,
    http_client: httpx.AsyncClient | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    handle_signals: bool = True,
) -> int:
    """Run the command; ``http_client`` replaces the client's connection pool (tests,
    proxies).

    ``handle_signals=False`` leaves SIGINT/SIGTERM alone (for callers outside the main
    thread).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    started = time.monotonic()
    try:
        rows = _read(args, lambda text: print(f"{PROG}: note: {text}", file=err))
    except ImportFileError as exc:
        return _usage_error(err, str(exc))
    from_stdin = args.file == "-"
    source = "stdin" if from_stdin else args.file
    report_path = Path(args.report or (STDIN_REPORT if from_stdin else f"{args.file}.failed.jsonl"))
    if not from_stdin and _same_file(report_path, Path(args.file)):
        return _usage_error(err, "--report must not be the input file")
    client: AsyncChatarminOS | None = None
    if not args.dry_run:
        try:
            client = AsyncChatarminOS(base_url=args.base_url, http_client=http_client)
        except ChatarminOSError as exc:
            return _usage_error(err, _for_the_command_line(str(exc)))
    try:
        report = Report(report_path)
    except OSError as exc:
        return _usage_error(
            err, f"cannot write the report {str(report_path)!r}: {exc.strerror or exc}"
        )
    progress = Progress(err, len(rows), counts=not args.dry_run)
    tally = ImportSummary()
    state = _RunState()

    def on_result(result: RowResult) -> None:
        tally.add(result)
        if result.status == "failed":
            report.write(result)
        run_wide = is_run_wide(result.error)
        if run_wide and not state.told:
            state.told = True
            assert result.error is not None
            progress.note(f"{PROG}: stopped: {stop_reason(result.error)}")
        progress.update(result, tally, quiet=run_wide)

    try:
        if client is None:
            for failure in check_organisations(rows):
                on_result(failure)
        else:
            anyio.run(_import, client, rows, args, on_result, progress, state, handle_signals)
    except KeyboardInterrupt:
        state.interrupted = True
    finally:
        progress.close()
        report.close(keep=tally.failed > 0)
    tally.not_started = len(rows) - tally.done
    if state.stopped_by is not None and not state.told:
        print(f"{PROG}: stopped: {stop_reason(state.stopped_by)}", file=err)
    elapsed = time.monotonic() - started
    if args.dry_run:
        print(dry_run_summary(tally, source, len(rows), report_path), file=out)
    else:
        text = summary_text(
            tally,
            source,
            len(rows),
            elapsed,
            report_path,
            interrupted=state.interrupted,
            stopped_by=state.stopped_by,
        )
        print(text, file=out)
    if state.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if tally.failed or state.stopped_by is not None else EXIT_OK


def _same_file(left: Path, right: Path) -> bool:
    try:
        return left.exists() and left.samefile(right)
    except OSError:
        return False


@dataclass
class _RunState:
    interrupted: bool = False
    stopped_by: ChatarminOSError | None = None
    told: bool = False  # the one line saying why the run stopped was written


async def _import(
    client: AsyncChatarminOS,
    rows: list[SourceRow],
    args: argparse.Namespace,
    on_result: Callable[[RowResult], None],
    progress: Progress,
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


async def _watch_signals(
    stop: anyio.Event,
    rows_scope: anyio.CancelScope,
    progress: Progress,
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
