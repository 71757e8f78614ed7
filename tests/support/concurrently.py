"""Run calls at the same time: tasks in async tests, threads in the generated sync tests.

``arun_all`` is what ``tests/_async`` uses; ``scripts/gen_sync.py`` rewrites it to
``run_all`` in ``tests/_sync``. Each result is the call's return value or the exception it
raised, in the order given, except a failed ``assert``: once every call has finished, the
first ``AssertionError`` (in the order given) is raised, so that an assertion inside a call
fails the test.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio


def _results(results: list[Any]) -> list[Any]:
    """``results``, unless a call failed an assertion: then that ``AssertionError``."""
    for result in results:
        if isinstance(result, AssertionError):
            raise result
    return results


async def arun_all(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Await every call in its own task; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)

    async def one(index: int, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[index] = await call()
        except Exception as exc:
            results[index] = exc

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call)
    return _results(results)


def run_all(*calls: Callable[[], Any]) -> list[Any]:
    """Run every call in its own thread; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)

    def one(index: int, call: Callable[[], Any]) -> None:
        try:
            results[index] = call()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=item) for item in enumerate(calls)]
    # A thread keeps the GIL until it blocks, so each call gets as far as waiting (for its
    # batch, say) before the next starts: the calls are made in the order given, as tasks
    # are. No garbage collection meanwhile: a finalizer it runs may release the GIL.
    interval = sys.getswitchinterval()
    collecting = gc.isenabled()
    sys.setswitchinterval(1.0)
    gc.disable()
    try:
        for thread in threads:
            thread.start()
    finally:
        sys.setswitchinterval(interval)
        if collecting:
            gc.enable()
    for thread in threads:
        thread.join(timeout=60)
    return _results(results)
