"""``chatarmin-os``: the command line, one entry point for the SDK's tools.

* ``chatarmin-os import FILE`` onboards organisations from a file (a client: it loads no
  server code);
* ``chatarmin-os serve`` / ``chatarmin-os catalog``: the local ChatarminOS (its commands
  live in ``chatarmin_os.local.cli``, loaded for every command but ``import``);
* ``chatarmin-os --version``.

The one parser of the command is built here. A mistake in the arguments is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ._version import __version__

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser(with_local_server: bool) -> argparse.ArgumentParser:
    """The ``chatarmin-os`` parser; ``args.run(args)`` runs the chosen command.

    ``with_local_server=False`` leaves out ``serve`` and ``catalog``, so that
    ``chatarmin-os import`` loads nothing of the local server.
    """
    from .importer import _cli as import_cli

    parser = _Parser(prog="chatarmin-os", description="Tools for the ChatarminOS Python SDK.")
    parser.add_argument("--version", action="version", version=f"chatarmin-os {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if with_local_server:
        from .local.cli import add_commands

        add_commands(commands)
    import_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chatarmin-os`` command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser(with_local_server=arguments[:1] != ["import"]).parse_args(arguments)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
