"""``BatcherCore``: the queues of a batcher, without the waiting (see ``_async/_batcher.py``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from .._batching import BatchOptions, Call, plan_batches
from .._exceptions import ChatarminOSError
from .._fork import register as reset_after_fork
from .._wire import Kind

__all__ = ["BatcherCore"]


class BatcherCore:
    """The queues of one client's batcher, per kind, and the identical queries in flight.

    ``send`` sends one batch (or call) of one kind until each call has an outcome (the
    client's request loop); ``background`` is where flushes run; ``base_url_length`` bounds
    a query batch's URL. A twin names ``_current_loop`` and ``_wait`` (how a flush waits for
    others to join).
    """

    _current_loop: ClassVar[Any]  # staticmethod: () -> the running event loop (or None)
    _wait: ClassVar[Any]  # staticmethod: (seconds) -> wait

    def __init__(
        self,
        options: BatchOptions,
        send: Callable[[list[Call]], Any],
        background: Any,
        base_url_length: int,
    ) -> None:
        self._send_batch = send
        self._background = background
        self._base_url_length = base_url_length
        self.options = options
        """The batching options in force."""
        self._lock = threading.Lock()
        self._reset()
        # Seams for tests: what a flush waits for before taking the queue, and a hook
        # called (under the lock) for every call submitted, queued or joining another.
        wait = type(self)._wait
        self._window: Callable[[], Any] = lambda: wait(options.wait)
        self._on_submit: Callable[[Call], None] | None = None
        reset_after_fork(self)

    def _reset(self) -> None:
        self._queues: dict[Kind, list[Call]] = {"query": [], "mutation": []}
        self._flushing: dict[Kind, bool] = {"query": False, "mutation": False}
        self._in_flight: dict[tuple[str, str | None], Call] = {}
        self._loop = type(self)._current_loop()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._reset()  # the parent's queued calls are the parent's to send

    def _planned(self, calls: list[Call]) -> list[list[Call]]:
        return plan_batches(calls, self.options, self._base_url_length)

    def _answered(self, batch: list[Call]) -> None:
        """A batch was sent (or its sending ended): no longer in flight; every call done."""
        with self._lock:
            for call in batch:
                if call.key is not None and self._in_flight.get(call.key) is call:
                    del self._in_flight[call.key]
        for call in batch:
            if not call.finished:  # cancelled (the client closed) or a bug: never hang
                call.fail(
                    ChatarminOSError("The call was not answered: the client closed first."),
                    None,
                )
            call.done.set()
