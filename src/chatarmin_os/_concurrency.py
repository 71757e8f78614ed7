"""The few primitives that differ between the async and the sync client.

``_async`` code imports the async names; ``scripts/gen_sync.py`` rewrites them to the
sync names (``asleep`` -> ``sleep``, ``AsyncSleeper`` -> ``Sleeper``, ``current_loop`` ->
``no_loop``). Waiting goes through anyio in the async client, so it works under asyncio and
trio alike.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias

__all__ = ["AsyncSleeper", "Sleeper", "asleep", "current_loop", "no_loop", "sleep"]

AsyncSleeper: TypeAlias = Callable[[float], Awaitable[None]]
"""An async function that waits for the given number of seconds."""

Sleeper: TypeAlias = Callable[[float], None]
"""A function that blocks for the given number of seconds."""


async def asleep(seconds: float) -> None:
    """Wait ``seconds`` under whichever event loop runs (asyncio or trio), via anyio."""
    import anyio

    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Block the calling thread for ``seconds``."""
    time.sleep(seconds)


def current_loop() -> object | None:
    """The event loop running now: the asyncio loop, or trio's token; ``None`` outside one.

    Connections belong to the loop that opened them; a client compares this with the loop
    its pool was made under to notice ``asyncio.run`` being called again, a test suite's
    fresh loop per test, or a forked child's new loop.
    """
    asyncio = sys.modules.get("asyncio")  # not imported: no asyncio loop can be running
    if asyncio is not None:
        loop: object | None = asyncio._get_running_loop()
        if loop is not None:
            return loop
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()  # type: ignore[no-any-return]
        except RuntimeError:
            return None
    return None


def no_loop() -> object | None:
    """The sync twin of :func:`current_loop`: blocking code has no event loop."""
    return None
