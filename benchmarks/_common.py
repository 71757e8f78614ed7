"""What the benchmark scripts share: a ``chatarmin-os serve`` to measure against, and timers.

Imported as ``_common`` by the scripts next to it (``python benchmarks/bench_x.py`` puts
this folder first on ``sys.path``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

Runner = Callable[[int], float]
"""Runs n calls; returns the seconds they took."""


def timed(fn: Callable[[], object]) -> Runner:
    """A runner calling ``fn`` n times in a row."""

    def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - started

    return run


def compare(
    first: Runner, second: Runner, calls: tuple[int, int], rounds: int
) -> tuple[float, float, float]:
    """Median seconds per call of each, and the median of the per-round ratios, over
    interleaved rounds (after a warm-up round of each)."""
    first(max(1, calls[0] // 10))
    second(max(1, calls[1] // 10))
    first_times, second_times = [], []
    for _ in range(rounds):
        first_times.append(first(calls[0]) / calls[0])
        second_times.append(second(calls[1]) / calls[1])
    ratio = statistics.median(a / b for a, b in zip(first_times, second_times, strict=True))
    return statistics.median(first_times), statistics.median(second_times), ratio


def start_serve(api_key: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``chatarmin-os serve`` on a free port (more ``args`` if given), ready: its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatarmin_os.cli",
            "serve",
            "--port",
            "0",
            "--api-key",
            api_key,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
    deadline = time.monotonic() + 30
    with httpx.Client() as http:
        while True:
            try:
                http.get(base_url.removesuffix("/api/v1") + "/healthz")
                return process, base_url
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    process.kill()
                    raise
