"""``chatarmin-os``: the command line, one entry point for the SDK's tools.

* ``chatarmin-os import FILE`` onboards organisations from a file;
* ``chatarmin-os features|billing|tiers|usage ...`` look up a customer's entitlements,
  billing, the tier catalog, and track usage (``chatarmin_os._cli_inspect``);
* ``chatarmin-os codegen -o FILE`` writes typed feature codes (``chatarmin_os._codegen``);
* ``chatarmin-os serve`` / ``chatarmin-os catalog``: the local ChatarminOS (its commands
  live in ``chatarmin_os.local.cli``, loaded only for them and for ``--help``);
* ``chatarmin-os --version``.

The client commands load nothing of the local server. The one parser of the command is built
here. A mistake in the arguments is one line on stderr and exit status 2; the client
commands' other exit codes are listed in ``chatarmin_os._cli_common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ._version import __version__

__all__ = ["main"]

CLIENT_COMMANDS = frozenset({"import", "features", "billing", "tiers", "usage", "codegen"})
"""Commands that talk to an API (and need none of the local server's code)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser(with_local_server: bool) -> argparse.ArgumentParser:
    """The ``chatarmin-os`` parser; ``args.run(args)`` runs the chosen command.

    ``with_local_server=False`` leaves out ``serve`` and ``catalog``, so that the client
    commands load nothing of the local server.
    """
    from . import _cli_inspect, _codegen
    from .importer import _cli as import_cli

    parser = _Parser(prog="chatarmin-os", description="Tools for the ChatarminOS Python SDK.")
    parser.add_argument("--version", action="version", version=f"chatarmin-os {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if with_local_server:
        from .local.cli import add_commands

        add_commands(commands)
    import_cli.add_parser(commands)
    _cli_inspect.add_commands(commands)
    _codegen.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``chatarmin-os`` command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    with_local_server = not arguments or arguments[0] not in CLIENT_COMMANDS
    args = _parser(with_local_server=with_local_server).parse_args(arguments)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
