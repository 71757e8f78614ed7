"""A real ``redis-server`` for tests, on a free port of 127.0.0.1 (not a test module).

Started with ``--save '' --appendonly no`` in a scratch directory and stopped (or killed,
to test Redis going away) by the test. Without ``redis-server`` on ``PATH`` the tests that
need it are skipped with the reason, except in CI (``CI=true``), where they fail: ``.ci/run``
installs it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.helpers import in_ci

START_TIMEOUT = 10.0


def redis_server_binary() -> str:
    """The ``redis-server`` to run; skips (or, in CI, fails) the test without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        if in_ci():
            pytest.fail(
                "redis-server is not installed; .ci/run installs it (apt-get install redis-server)"
            )
        pytest.skip(
            "redis-server not found on PATH: install it (apt-get install redis-server) to run the Redis tests"
        )
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One running ``redis-server``; :meth:`kill` it to test Redis going away."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = redis_server_binary()
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers ``PING`` (bounded)."""
        import redis

        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    probe.ping()
                    return self
                except redis.ConnectionError:
                    if self.process.poll() is not None:
                        raise RuntimeError(
                            f"redis-server exited with {self.process.returncode}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)  # polling for the port to open, bounded by the deadline
        finally:
            probe.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
