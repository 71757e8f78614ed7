"""Run the Node reference tRPC server (``tests/conformance/server.mjs``) from Python.

The reference server is a real ``@trpc/server`` v11 router answering every procedure of the
API with canned outputs (see ``tests/conformance/README.md``). ``tests/conftest.py`` starts one
per transformer mode per session for the conformance tests (through
:func:`tests.support.needs.start_reference_server`), and
``benchmarks/bench_local_server.py`` starts one to measure the local server against.
Nothing here imports pytest: a missing Node.js raises :class:`NodeUnavailable`.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = [
    "CONFORMANCE_DIR",
    "NodeUnavailable",
    "ReferenceServer",
    "ReferenceServerError",
    "ensure_node_modules",
    "find_node",
]

CONFORMANCE_DIR = Path(__file__).resolve().parents[1] / "conformance"
"""Where the Node files live: ``server.mjs``, ``package.json``, ``node_modules``."""
SERVER_SCRIPT = CONFORMANCE_DIR / "server.mjs"
# The packages server.mjs imports; `npm ci` runs when any of them is missing.
_REQUIRED_PACKAGES = ("@trpc/server", "superjson", "zod")

START_TIMEOUT = 30.0
"""Seconds to wait for the ``LISTENING <port>`` line."""
STOP_TIMEOUT = 5.0
"""Seconds to wait for a clean exit after SIGTERM before killing the server."""
NPM_CI_TIMEOUT = 600.0
CONTROL_TIMEOUT = 10.0


class ReferenceServerError(RuntimeError):
    """The reference server could not be installed or started (the message says why)."""


class NodeUnavailable(ReferenceServerError):
    """Node.js or npm is not installed."""


def find_node() -> str:
    """The ``node`` executable, or :class:`NodeUnavailable`."""
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("Node.js not found: the tRPC reference server needs node and npm")
    return node


def ensure_node_modules() -> None:
    """``npm ci`` in ``tests/conformance`` when its dependencies are not installed yet."""
    modules = CONFORMANCE_DIR / "node_modules"
    if all((modules / name / "package.json").is_file() for name in _REQUIRED_PACKAGES):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise NodeUnavailable("npm not found: the tRPC reference server needs node and npm")
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
        raise ReferenceServerError(
            f"`npm ci` in {CONFORMANCE_DIR} took more than {NPM_CI_TIMEOUT:.0f} s"
        ) from None
    if result.returncode != 0:
        raise ReferenceServerError(
            f"`npm ci` in {CONFORMANCE_DIR} failed with exit code {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
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


class ReferenceServer:
    """A running ``server.mjs --mode <mode>`` on a free port of 127.0.0.1.

    ``options`` are more ``server.mjs`` arguments (e.g. ``["--max-batch", "2"]``).
    """

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
    def start(
        cls, mode: str, *, options: Sequence[str] = (), timeout: float = START_TIMEOUT
    ) -> ReferenceServer:
        """Install the Node dependencies if needed, start the server, wait until it listens."""
        node = find_node()
        ensure_node_modules()
        server = cls(mode)
        server._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed by stop())
        server._process = subprocess.Popen(
            [
                node,
                str(SERVER_SCRIPT),
                "--mode",
                mode,
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                *options,
            ],
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
            raise ReferenceServerError(
                f"the reference server ({mode}) did not start: {why}\nstderr:\n{stderr}"
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

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ReferenceServer(mode={self.mode!r}, port={self.port})"

    # --- URLs and control endpoints -----------------------------------------------------

    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("the reference server is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Where the procedures are: ``http://127.0.0.1:PORT/api/v1``."""
        return f"{self.origin}/api/v1"

    def _control(self, method: str, path: str) -> Any:
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(
                f"the reference server ({self.mode}) is not running; stderr:\n{self.stderr_text()}"
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

    def set_output(self, path: str, output: Any) -> None:
        """``POST /__output``: answer ``path`` with ``output`` (plain JSON) until :meth:`reset`."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"the reference server ({self.mode}) is not running")
        response = self._http.post(f"{self.origin}/__output", json={"path": path, "output": output})
        response.raise_for_status()

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (user + system, all its threads), or
        ``None`` where ``/proc`` cannot tell (not Linux, or not running)."""
        process = self._process
        if process is None:
            return None
        try:
            with open(f"/proc/{process.pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset(self) -> None:
        """``POST /__reset``: forget the recorded calls, requests and canned outputs set."""
        assert self._control("POST", "/__reset") == {"ok": True}
