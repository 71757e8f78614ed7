"""The import command's progress on stderr: a bar on a terminal, plain lines otherwise.

Failed rows are described (the first :data:`SHOWN_FAILURES`; the report has them all). The
last progress line always shows the final counts, the ones the summary gives.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from typing import IO

from ._results import ImportSummary, RowResult

__all__ = ["SHOWN_FAILURES", "Progress", "describe"]

SHOWN_FAILURES = 20
"""Failed rows described on stderr; the report file has them all."""


def describe(result: RowResult) -> str:
    """A failed row in one line: where it is, where it failed, and why."""
    where = f"row {result.row}"
    if result.line is not None:
        where += f", line {result.line}"
    if result.id is not None:
        where += f", id {result.id}"
    error = result.error
    kind = type(error).__name__
    code = getattr(error, "code", None)
    if code:
        kind += f" {code}"
    if result.stage == "validate":
        return f"failed {where}: {result.message}"
    return f"failed {where}: {result.stage}: {kind}: {result.message}"


class Progress:
    """Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise."""

    BAR_WIDTH = 30
    REDRAW_EVERY = 0.1
    LINE_EVERY = 5.0

    def __init__(
        self,
        stream: IO[str],
        total: int,
        *,
        tty: bool | None = None,
        counts: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``counts=False``: only the failed rows are shown (a dry run)."""
        self.stream = stream
        self.total = total
        self.counts = counts
        if tty is None:
            tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        self.tty = tty
        self.clock = clock
        self.started = clock()
        self.shown_failures = 0
        self.step = max(1, math.ceil(total / 10))
        self.next_line = self.step
        self.last_output = self.started
        self.bar = ""
        self.done = self.failed = 0
        self.shown: tuple[int, int] | None = None  # (done, failed) of the last line

    def update(self, result: RowResult, tally: ImportSummary, *, quiet: bool = False) -> None:
        """One more row finished; ``quiet``: do not describe it (its cause is told once)."""
        self.done, self.failed = tally.done, tally.failed
        if result.status == "failed" and not quiet:
            if self.shown_failures < SHOWN_FAILURES:
                self.note(describe(result))
            elif self.shown_failures == SHOWN_FAILURES:
                self.note("more failed rows: see the report")
            self.shown_failures += 1
        now = self.clock()
        if not self.counts:
            return
        if self.tty:
            if self.done == self.total or now - self.last_output >= self.REDRAW_EVERY:
                self._draw(now)
        elif (
            self.done >= self.next_line
            or self.done == self.total
            or now - self.last_output >= self.LINE_EVERY
        ):
            self.next_line = (self.done // self.step + 1) * self.step
            self.last_output = now
            self._line()

    def note(self, text: str) -> None:
        """A line of its own (the bar, if any, is redrawn under it)."""
        self._clear()
        self._write(text + "\n")
        if self.tty and self.counts and self.done:
            self._draw(self.clock())

    def close(self) -> None:
        """Take the bar off the screen (the summary follows on stdout); without a terminal,
        end with the final counts when the last line showed others (a stopped run)."""
        self._clear()
        if self.counts and not self.tty and self.done and self.shown != (self.done, self.failed):
            self._line()

    def _line(self) -> None:
        self.shown = (self.done, self.failed)
        self._write(f"{self.done}/{self.total} rows done, {self.failed} failed\n")

    def _draw(self, now: float) -> None:
        filled = self.BAR_WIDTH * self.done // self.total if self.total else self.BAR_WIDTH
        elapsed = now - self.started
        rate = f", {self.done / elapsed:.0f} rows/s" if elapsed > 0 else ""
        text = (
            f"[{'#' * filled}{'.' * (self.BAR_WIDTH - filled)}] {self.done}/{self.total} rows, "
            f"{self.failed} failed{rate}"
        )
        columns = shutil.get_terminal_size((80, 24)).columns
        self.bar = text[: max(10, columns - 1)]
        self._write("\r\x1b[K" + self.bar)
        self.last_output = now

    def _clear(self) -> None:
        if self.tty and self.bar:
            self._write("\r\x1b[K")
            self.bar = ""

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
