"""``chatarmin-os``: the command line (``chatarmin-os serve`` runs a local ChatarminOS)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .. import _import_cli
from .catalog import SeedError, load_seed
from .engine import DEFAULT_API_KEY, LocalEngine
from .protocol import DEFAULT_PREFIX

__all__ = ["main"]


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn, with ``TCP_NODELAY`` set.

    Made with ``IPPROTO_TCP``, not 0: asyncio only sets ``TCP_NODELAY`` on sockets it knows
    are TCP, and without it every keep-alive request waits ~40 ms (Nagle + delayed ACK).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print(
            "chatarmin-os serve needs uvicorn: pip install 'chatarmin-os[server]'",
            file=sys.stderr,
        )
        return 2
    from .asgi import create_app

    seed = None
    if args.seed:
        try:
            seed = load_seed(args.seed)
        except (OSError, SeedError) as exc:
            print(f"chatarmin-os serve: bad seed file {args.seed}: {exc}", file=sys.stderr)
            return 2
    try:
        sock = listen_socket(args.host, args.port)
    except OSError as exc:
        print(
            f"chatarmin-os serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr
        )
        return 2
    keys = args.api_key or [os.environ.get("OS_API_KEY") or DEFAULT_API_KEY]
    database = str(Path(args.db).expanduser()) if args.db else ":memory:"
    engine = LocalEngine(database, seed=seed, api_keys=keys)
    app = create_app(engine, transformer=args.transformer)

    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    key_note = (
        f"API key {DEFAULT_API_KEY}"
        if keys == [DEFAULT_API_KEY]
        else f"{len(keys)} API key(s) given"
    )
    where = database if database != ":memory:" else "in memory (gone on exit; --db PATH keeps it)"
    print(f"ChatarminOS local server on http://{host}:{port}{DEFAULT_PREFIX}", flush=True)
    print(f"  {key_note}; data {where}; transformer {args.transformer}", flush=True)
    print("  Ctrl-C stops it.", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="on", access_log=False)
    server = uvicorn.Server(config)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chatarmin-os`` command."""
    parser = argparse.ArgumentParser(
        prog="chatarmin-os", description="Tools for the ChatarminOS Python SDK."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run a local ChatarminOS over HTTP (tRPC at /api/v1)",
        description=(
            "Run a local ChatarminOS: every procedure of the API on SQLite, served as tRPC "
            "at http://HOST:PORT/api/v1 for the SDKs, the TypeScript SDK and curl."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=3001, help="port (3001; 0 picks a free one)")
    serve.add_argument("--db", help="SQLite file to keep data in across restarts (default: memory)")
    serve.add_argument("--seed", help="JSON catalog replacing the default tiers, features, ...")
    serve.add_argument(
        "--api-key",
        action="append",
        help=f"accepted API key, repeatable (default: $OS_API_KEY, else {DEFAULT_API_KEY})",
    )
    serve.add_argument(
        "--transformer",
        choices=["auto", "json", "superjson"],
        default="auto",
        help="answer in plain JSON, superjson, or whichever the request uses (auto)",
    )
    serve.add_argument("--log-level", default="warning", help="uvicorn log level (warning)")
    _import_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "import":
        return _import_cli.run(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
