"""The few primitives that differ between the async and the sync client.

``_async`` code imports the async names; ``scripts/gen_sync.py`` rewrites them to the
sync names (``asleep`` -> ``sleep``, ``AsyncSleeper`` -> ``Sleeper``). Waiting goes through
anyio in the async client, so it works under asyncio and trio alike.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import anyio

__all__ = ["AsyncSleeper", "Sleeper", "asleep", "sleep"]

AsyncSleeper: TypeAlias = Callable[[float], Awaitable[None]]
"""An async function that waits for the given number of seconds."""

Sleeper: TypeAlias = Callable[[float], None]
"""A function that blocks for the given number of seconds."""


async def asleep(seconds: float) -> None:
    """Wait ``seconds`` under whichever event loop runs (asyncio or trio), via anyio."""
    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Block the calling thread for ``seconds``."""
    time.sleep(seconds)
