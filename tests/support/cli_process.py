"""Run the real ``chatarmin-os`` console script in a subprocess (not a test module).

``sys.executable -m chatarmin_os.cli`` is what the ``chatarmin-os`` entry point runs; the
environment is the caller's minus anything that would steer the command (``OS_API_KEY``,
``CHATARMIN_OS_BASE_URL``, ``CHATARMIN_OS_LOG``), plus ``env``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.serve_process import ROOT, ServeProcess

KEY = "os_sk_cli_tests"
STEERING = ("OS_API_KEY", "CHATARMIN_OS_BASE_URL", "CHATARMIN_OS_LOG")


@dataclass(frozen=True)
class Done:
    """A finished run: exit status, stdout and stderr."""

    status: int
    out: str
    err: str


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None, *, cwd: Path = ROOT) -> Done:
    """Run ``chatarmin-os ARGS`` to the end (60 s at most)."""
    environ = {k: v for k, v in os.environ.items() if k not in STEERING}
    environ.update(env or {})
    result = subprocess.run(
        [sys.executable, "-m", "chatarmin_os.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environ,
        timeout=60,
    )
    return Done(result.returncode, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A real ``chatarmin-os serve`` on a free port, shared by a test module; key :data:`KEY`."""
    server = ServeProcess.start(["--api-key", KEY], tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        server.kill()
