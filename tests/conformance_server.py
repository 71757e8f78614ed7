"""Run the Node tRPC conformance server (``tests/conformance/server.mjs``) for the tests.

A plain module (not generated): ``tests/conftest.py`` starts one server per transformer mode
per session and both test variants use it. See ``tests/conformance/README.md`` for the
server itself (``LISTENING <port>``, ``/__calls``, ``/__requests``, ``/__reset``).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

__all__ = ["CONFORMANCE_DIR", "ConformanceServer", "ensure_node_modules", "find_node"]

CONFORMANCE_DIR = Path(__file__).resolve().parent / "conformance"
SERVER_SCRIPT = CONFORMANCE_DIR / "server.mjs"
# The packages server.mjs imports; `npm ci` runs when any of them is missing.
_REQUIRED_PACKAGES = ("@trpc/server", "superjson", "zod")

START_TIMEOUT = 30.0
"""Seconds to wait for the ``LISTENING <port>`` line."""
STOP_TIMEOUT = 5.0
"""Seconds to wait for a clean exit after SIGTERM before killing the server."""
NPM_CI_TIMEOUT = 600.0
CONTROL_TIMEOUT = 10.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _missing_tool(what: str) -> None:
    """Skip (locally) or fail (in CI) when Node.js or npm is not installed."""
    if _in_ci():
        pytest.fail(
            f"Node is required in CI for the tRPC conformance suite, but {what} was not found "
            "on PATH (install Node.js >= 20 with npm)",
            pytrace=False,
        )
    pytest.skip("Node.js not found: the tRPC conformance suite needs node and npm")


def find_node() -> str:
    """The ``node`` executable (skips or fails the test when there is none)."""
    node = shutil.which("node")
    if node is None:
        _missing_tool("`node`")
    assert node is not None
    return node


def ensure_node_modules() -> None:
    """``npm ci`` in ``tests/conformance`` when its dependencies are not installed yet."""
    modules = CONFORMANCE_DIR / "node_modules"
    if all((modules / name / "package.json").is_file() for name in _REQUIRED_PACKAGES):
        return
    npm = shutil.which("npm")
    if npm is None:
        _missing_tool("`npm`")
    assert npm is not None
    try:
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=CONFORMANCE_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm ci` in {CONFORMANCE_DIR} took more than {NPM_CI_TIMEOUT:.0f} s")
    if result.returncode != 0:
        pytest.fail(
            f"`npm ci` in {CONFORMANCE_DIR} failed with exit code {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )


def _read_line(stream: IO[str], timeout: float) -> str | None:
    """One line from a pipe, or ``None`` after ``timeout`` seconds (the pipe is not polled)."""
    lines: queue.Queue[str] = queue.Queue(maxsize=1)
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


class ConformanceServer:
    """A running ``server.mjs --mode <mode>`` on a free port of 127.0.0.1."""

    def __init__(self, mode: str) -> None:
        if mode not in ("json", "superjson"):
            raise ValueError(f"mode must be 'json' or 'superjson', got {mode!r}")
        self.mode = mode
        self.port: int | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        # One client for the control endpoints (making one per call costs ~50 ms: certifi).
        # `Connection: close`, so no pooled connection can go stale on the server's
        # keep-alive timeout between two calls.
        self._http = httpx.Client(
            timeout=CONTROL_TIMEOUT, trust_env=False, headers={"Connection": "close"}
        )

    # --- life cycle -------------------------------------------------------------------

    @classmethod
    def start(cls, mode: str, *, timeout: float = START_TIMEOUT) -> ConformanceServer:
        """Install the Node dependencies if needed, start the server, wait until it listens."""
        node = find_node()
        ensure_node_modules()
        server = cls(mode)
        server._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed by stop())
        server._process = subprocess.Popen(
            [node, str(SERVER_SCRIPT), "--mode", mode, "--port", "0", "--host", "127.0.0.1"],
            cwd=CONFORMANCE_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=server._stderr,
            text=True,
            encoding="utf-8",
        )
        assert server._process.stdout is not None
        line = _read_line(server._process.stdout, timeout)
        if line is None or not line.startswith("LISTENING "):
            if line is None:
                why = f"no LISTENING line within {timeout:.0f} s"
            elif not line:
                why = f"it exited with code {server._process.wait(timeout=STOP_TIMEOUT)}"
            else:
                why = f"its first line was {line!r}"
            server._terminate()
            stderr = server.stderr_text()
            server.stop()
            pytest.fail(
                f"the conformance server ({mode}) did not start: {why}\nstderr:\n{stderr}",
                pytrace=False,
            )
        server.port = int(line.split()[1])
        return server

    def _terminate(self) -> None:
        """SIGTERM, wait, and SIGKILL when the server does not exit in time."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()

    def stop(self) -> None:
        """Stop the server (terminate, wait, kill on timeout) and release its files."""
        self._terminate()
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.close()
        self._http.close()

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far."""
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self) -> ConformanceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ConformanceServer(mode={self.mode!r}, port={self.port})"

    # --- URLs and control endpoints -----------------------------------------------------

    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("the conformance server is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Where the procedures are: ``http://127.0.0.1:PORT/api/v1``."""
        return f"{self.origin}/api/v1"

    def _control(self, method: str, path: str) -> Any:
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(
                f"the conformance server ({self.mode}) is not running; stderr:\n"
                f"{self.stderr_text()}"
            )
        response = self._http.request(method, f"{self.origin}{path}")
        response.raise_for_status()
        return response.json()

    def calls(self) -> list[dict[str, Any]]:
        """``GET /__calls``: one record per procedure call past auth and input validation."""
        result: list[dict[str, Any]] = self._control("GET", "/__calls")
        return result

    def requests(self) -> list[dict[str, Any]]:
        """``GET /__requests``: every raw HTTP request that reached ``/api/v1``."""
        result: list[dict[str, Any]] = self._control("GET", "/__requests")
        return result

    def reset(self) -> None:
        """``POST /__reset``: forget the recorded calls and requests."""
        assert self._control("POST", "/__reset") == {"ok": True}
