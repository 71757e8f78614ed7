"""What every client command of ``chatarmin-os`` shares: the client from the environment, the
``--base-url`` and ``--json`` flags, aligned tables, and one line per failure with its exit code.

Exit codes (the same for every inspection command and ``codegen``):

* 0 — done;
* 1 — the API answered with an error (an unknown org, company, tier or feature; a refused
  key; a usage limit), or ``codegen --check`` found the file stale;
* 2 — a usage error: bad arguments, no ``OS_API_KEY``, a malformed base URL (argparse's own
  errors exit 2 as well);
* 3 — no usable answer: the API could not be reached, timed out, or what answered is not
  ChatarminOS (a wrong base URL);
* 130 — interrupted (Ctrl-C).

A failure is one line on stderr, ``chatarmin-os: error: ...``, never a traceback, never the key.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from ._exceptions import (
    AuthenticationError,
    ChatarminOSError,
    ConfigurationError,
    InvalidInputError,
)
from ._explain import is_run_wide, is_unreachable, stop_reason

if TYPE_CHECKING:
    from ._sync.client import ChatarminOS

__all__ = [
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "add_client_flags",
    "dump_json",
    "error_line",
    "exit_code",
    "fail",
    "fields",
    "run_with_client",
    "table",
]

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PROG = "chatarmin-os"

CLIENT_EPILOG = """\
The API key is read from OS_API_KEY (never from a flag: a flag would show in ps); the
endpoint from --base-url, else CHATARMIN_OS_BASE_URL, else the hosted API.

exit status: 0 done, 1 the API answered with an error (an unknown org, say), 2 usage
error (bad arguments, no OS_API_KEY), 3 no usable answer (unreachable, or a wrong base URL),
130 interrupted.
"""


def add_client_flags(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    """``--base-url`` and (unless ``json_flag=False``) ``--json``."""
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="API endpoint (default $CHATARMIN_OS_BASE_URL, else the hosted API)",
    )
    if json_flag:
        parser.add_argument(
            "--json", action="store_true", help="print JSON (the result model's dump), for scripts"
        )


def exit_code(error: ChatarminOSError) -> int:
    """The exit status for an error (see the module docstring)."""
    if isinstance(error, (ConfigurationError, InvalidInputError)):
        return EXIT_USAGE
    if isinstance(error, AuthenticationError):
        return EXIT_API
    if is_run_wide(error) or is_unreachable(error):
        return EXIT_UNREACHABLE
    return EXIT_API


def error_line(error: ChatarminOSError) -> str:
    """The one line printed for an error (no ``api_key=...`` advice: a shell has no such thing)."""
    plain = is_run_wide(error) or is_unreachable(error)
    text = stop_reason(error) if plain else " ".join(str(error).split())
    return text.replace("pass api_key=... or set the OS_API_KEY", "set the OS_API_KEY")


def fail(stderr: IO[str], message: str, status: int) -> int:
    """Print ``chatarmin-os: error: MESSAGE`` and return ``status``."""
    print(f"{PROG}: error: {message}", file=stderr)
    return status


def run_with_client(
    args: argparse.Namespace,
    work: Callable[[ChatarminOS], Any],
    render: Callable[[Any], str],
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Make the client (``OS_API_KEY``, ``--base-url``), run ``work`` with it and print its
    result: ``render(result)`` by default, its JSON dump with ``--json``."""
    from ._sync.client import ChatarminOS

    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        with ChatarminOS(base_url=args.base_url, max_retries=1) as client:
            result = work(client)
    except ChatarminOSError as exc:
        return fail(err, error_line(exc), exit_code(exc))
    except KeyboardInterrupt:
        return fail(err, "interrupted", EXIT_INTERRUPTED)
    print(dump_json(result) if getattr(args, "json", False) else render(result), file=out)
    return EXIT_OK


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def dump_json(result: Any) -> str:
    """A result (a model, or a list of them) as indented JSON: each model's JSON dump."""
    return json.dumps(_plain(result), indent=2, ensure_ascii=False)


def cell(value: Any) -> str:
    """A value as a table shows it: ``-`` for none, yes/no, ISO times, compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else "-"
    return " ".join(str(value).split())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned under upper-case headers, two spaces apart."""
    texts = [[cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in texts)]) for i, h in enumerate(headers)]
    lines = [[h.upper() for h in headers], *texts]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """Name / value lines, the values aligned."""
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join(f"{name.ljust(width)}  {cell(value)}".rstrip() for name, value in pairs)
