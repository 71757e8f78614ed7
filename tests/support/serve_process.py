"""Run ``chatarmin-os serve`` as a subprocess for tests (not a test module).

The server prints ``ChatarminOS local server on http://HOST:PORT/api/v1`` as its first stdout
line once its socket is bound; :meth:`ServeProcess.start` reads that line (with a deadline,
from a reader thread) to learn the port, then polls ``GET /healthz`` until uvicorn answers.
No fixed sleeps: every wait is on a real signal, bounded by a deadline.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]
BANNER = re.compile(r"^ChatarminOS local server on (http://127\.0\.0\.1:(\d+)/api/v1)$")
START_TIMEOUT = 30.0


class ServeProcess:
    """A running ``chatarmin-os serve``; stop it with :meth:`interrupt` or :meth:`kill`."""

    def __init__(self, process: subprocess.Popen[str], stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.base_url = ""
        self.origin = ""
        assert process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    @classmethod
    def start(
        cls, args: Sequence[str], workdir: Path, env: dict[str, str] | None = None
    ) -> ServeProcess:
        """Start ``chatarmin-os serve --port 0 ARGS`` and wait until it answers ``/healthz``.

        ``env`` is added to the environment (without the caller's ``OS_API_KEY``).
        """
        stderr_path = workdir / f"serve-stderr-{time.monotonic_ns()}.log"
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("OS_API_KEY", "CHATARMIN_OS_LOG")},
            **(env or {}),
        }
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "chatarmin_os.cli", "serve", "--port", "0", *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=ROOT,
                env=env,
            )
        server = cls(process, stderr_path)
        try:
            server._wait_ready(time.monotonic() + START_TIMEOUT)
        except BaseException:
            server.kill()
            raise
        return server

    def next_line(self, deadline: float) -> str | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"chatarmin-os serve printed nothing in time{self.diagnostics()}")
        try:
            line = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(
                f"chatarmin-os serve printed nothing in time{self.diagnostics()}"
            ) from None
        if line is not None:
            self.stdout.append(line)
        return line

    def _wait_ready(self, deadline: float) -> None:
        first = self.next_line(deadline)
        if first is None:
            self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            raise RuntimeError(
                f"chatarmin-os serve exited with {self.process.returncode} before listening"
                f"{self.diagnostics()}"
            )
        match = BANNER.match(first)
        assert match, f"unexpected first line {first!r}{self.diagnostics()}"
        self.base_url = match.group(1)
        self.origin = self.base_url.removesuffix("/api/v1")
        with httpx.Client(timeout=5.0) as http:
            while True:
                try:
                    response = http.get(f"{self.origin}/healthz")
                except httpx.TransportError:
                    # Bound but not accepting yet: uvicorn is still starting.
                    if self.process.poll() is not None:
                        raise RuntimeError(
                            f"chatarmin-os serve exited with {self.process.returncode}"
                            f"{self.diagnostics()}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"chatarmin-os serve never answered /healthz{self.diagnostics()}"
                        ) from None
                    continue
                assert response.status_code == 200, response.text
                assert response.json() == {"ok": True}
                return

    def interrupt(self, timeout: float = 10.0) -> int:
        """Ctrl-C: send SIGINT and wait for the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM (what a process manager sends) and wait for the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Stop it for good (cleanup)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._reader.join(timeout=10)  # the pipe hits EOF once the process is gone
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()

    def output(self) -> list[str]:
        """Every stdout line, once the process has exited (its pipe is at EOF)."""
        self._reader.join(timeout=10)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.stdout
            if line is not None:
                self.stdout.append(line)

    def diagnostics(self) -> str:
        try:
            stderr = self.stderr_path.read_text()
        except OSError:
            stderr = ""
        return f"\nstdout: {self.stdout!r}\nstderr: {stderr[-2000:]}"
