"""The local ChatarminOS's commands of ``chatarmin-os`` (whose parser is ``chatarmin_os.cli``).

* ``chatarmin-os serve`` runs a local ChatarminOS over HTTP (tRPC at ``/api/v1``);
* ``chatarmin-os catalog`` prints the default catalog, a starting point for ``--seed``.

Every mistake in the arguments (a bad port, a ``--db`` that cannot be a database, an unknown
log level, a bad seed file, a port in use) is one line on stderr and exit status 2, before
the server starts.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

from ._options import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY, ServerOptions
from .catalog import SeedError, load_seed
from .engine import DEFAULT_API_KEY, LocalEngine

__all__ = ["add_commands"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DEFAULT_READ_TIMEOUT = 10.0


def _fail(message: str) -> int:
    print(f"chatarmin-os serve: {message}", file=sys.stderr)
    return 2


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _database(path: str | None) -> str:
    """The ``--db`` argument as a database path, or ``ValueError`` saying what is wrong."""
    if not path:
        return ":memory:"
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"--db {path}: is a folder; give a file path, e.g. {target / 'os.db'}")
    if not target.parent.is_dir():
        raise ValueError(f"--db {path}: the folder {target.parent} does not exist")
    return str(target)


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The :class:`ServerOptions` that ``serve``'s flags ask for."""
    return ServerOptions(
        transformer=args.transformer,
        max_batch=args.max_batch,
        batching=args.batching,
        max_body=args.max_body,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    try:
        from . import _uvicorn
    except ImportError:
        return _fail(
            "needs the server extra (uvicorn, httptools): pip install 'chatarmin-os[server]'"
        )
    try:
        database = _database(args.db)
    except ValueError as error:
        return _fail(str(error))
    seed = None
    if args.seed:
        try:
            seed = load_seed(args.seed)
        except (OSError, SeedError) as error:
            return _fail(f"--seed: {error}")
    keys = args.api_key or [os.environ.get("OS_API_KEY") or DEFAULT_API_KEY]
    try:
        engine = LocalEngine(database, seed=seed, api_keys=keys, synchronous=args.synchronous)
    except sqlite3.DatabaseError as error:
        problem = "not a SQLite database" if "not a database" in str(error) else str(error)
        return _fail(f"--db {args.db}: {problem}")
    except (sqlite3.Error, RuntimeError, OSError) as error:
        return _fail(f"--db {args.db}: {error}")
    try:
        sock = _uvicorn.listen_socket(args.host, args.port)
    except OSError as error:
        engine.close()
        return _fail(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}")

    from .asgi import create_app

    options = server_options(args)
    app = create_app(engine, options)
    server = _uvicorn.build_server(
        app,
        read_timeout=args.read_timeout,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    key_note = (
        f"API key {DEFAULT_API_KEY}"
        if keys == [DEFAULT_API_KEY]
        else f"{len(keys)} API key(s) given"
    )
    where = database if database != ":memory:" else "in memory (gone on exit; --db PATH keeps it)"
    print(f"ChatarminOS local server on http://{host}:{port}{options.prefix}", flush=True)
    print(f"  {key_note}; data {where}; transformer {args.transformer}", flush=True)
    print("  Ctrl-C stops it.", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # handler that was there before: make SIGTERM end like Ctrl-C (engine closed, exit 0).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()
        sock.close()
    return 0


def _catalog() -> int:
    resource = resources.files("chatarmin_os.local").joinpath("default_catalog.json")
    sys.stdout.write(resource.read_text(encoding="utf-8"))
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve`` and ``catalog`` to a ``chatarmin-os`` parser (``args.run(args)`` runs one)."""
    serve = commands.add_parser(
        "serve",
        help="run a local ChatarminOS over HTTP (tRPC at /api/v1)",
        description=(
            "Run a local ChatarminOS: every procedure of the API on SQLite, served as tRPC "
            "at http://HOST:PORT/api/v1 for the SDKs, the TypeScript SDK and curl. "
            'GET /healthz answers {"ok":true} when it is up.'
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=3001, help="port (3001; 0 picks a free one)")
    serve.add_argument(
        "--db",
        metavar="PATH",
        help="SQLite file to keep data in across restarts, created if missing (default: memory)",
    )
    serve.add_argument(
        "--synchronous",
        choices=["normal", "full"],
        default="normal",
        help="durability of --db: normal survives a crash of this process, full also an "
        "OS crash or power loss, slower (normal)",
    )
    serve.add_argument(
        "--seed",
        metavar="FILE",
        help="JSON catalog (features, tiers, Stripe stand-ins) that REPLACES the stored one; "
        "start from `chatarmin-os catalog`",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help=f"accepted API key, repeatable; default $OS_API_KEY, else {DEFAULT_API_KEY} "
        "(prefer $OS_API_KEY: arguments show in ps)",
    )
    serve.add_argument(
        "--transformer",
        choices=["auto", "json", "superjson"],
        default="auto",
        help="answer in plain JSON, superjson, or whichever the request uses (auto)",
    )
    serve.add_argument(
        "--max-batch",
        type=_positive_int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help=f"most calls in one ?batch=1 request ({DEFAULT_MAX_BATCH})",
    )
    serve.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        help="refuse ?batch=1 requests, as tRPC's allowBatching: false",
    )
    serve.add_argument(
        "--max-body",
        type=_positive_int,
        default=DEFAULT_MAX_BODY,
        metavar="BYTES",
        help=f"largest request body ({DEFAULT_MAX_BODY}, 1 MiB)",
    )
    serve.add_argument(
        "--read-timeout",
        type=_seconds,
        default=DEFAULT_READ_TIMEOUT,
        metavar="SECONDS",
        help="a request must arrive complete within this; idle connections are closed "
        f"({DEFAULT_READ_TIMEOUT:g})",
    )
    serve.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="server log level (warning)"
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log one line per request (at any log level)"
    )
    commands.add_parser(
        "catalog",
        help="print the default catalog as JSON (a starting point for serve --seed)",
        description="Print the default catalog (features, tiers, Stripe stand-ins) as JSON.",
    ).set_defaults(run=lambda args: _catalog())
    serve.set_defaults(run=_serve)
