"""Where a client runs background work: asyncio tasks, trio's nursery, daemon threads."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
import trio

from chatarmin_os import AsyncChatarminOS, ChatarminOS, ChatarminOSError
from chatarmin_os._concurrency import AsyncBackground, Background
from tests.support.helpers import API_KEY, BASE_URL


def test_asyncio_work_runs_without_async_with_and_is_cancelled_on_close() -> None:
    async def main() -> list[str]:
        client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL)
        seen: list[str] = []
        started = asyncio.Event()

        async def work() -> None:
            seen.append("started")
            started.set()
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        handle = client._background.start(work, "test work")
        await started.wait()
        assert handle.alive()
        await client.aclose()
        await client._background.close()
        await asyncio.sleep(0)
        assert not handle.alive()
        return seen

    assert asyncio.run(main()) == ["started", "cancelled"]


def test_work_of_a_closed_loop_is_not_alive() -> None:
    background = AsyncBackground()
    finished = asyncio.Event()

    async def start() -> object:
        async def work() -> None:
            await finished.wait()

        return background.start(work, "test work")

    handle = asyncio.run(start())  # the loop ends with the work pending

    async def check() -> bool:
        return handle.alive()  # type: ignore[attr-defined, no-any-return]

    assert asyncio.run(check()) is False


def test_under_trio_work_needs_async_with() -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        ran = trio.Event()

        async def work() -> None:
            seen.append("ran")
            ran.set()

        client = AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL)
        with pytest.raises(ChatarminOSError, match="async with"):
            client._background.start(work, "usage buffer")
        async with AsyncChatarminOS(api_key=API_KEY, base_url=BASE_URL) as inside:
            handle = inside._background.start(work, "usage buffer")
            await ran.wait()
            await trio.sleep(0)
            assert not handle.alive()
        return seen

    assert trio.run(main) == ["ran"]


def test_copies_share_the_background_and_closing_steps() -> None:
    client = ChatarminOS(api_key=API_KEY, base_url=BASE_URL)
    copy = client.with_options(timeout=3.0)
    assert copy._background is client._background
    steps: list[str] = []
    client._on_close(lambda: steps.append("flushed"))
    copy.close()
    assert steps == []  # a copy does not own what its parent holds
    client.close()
    client.close()
    assert steps == ["flushed"]


def test_sync_work_runs_in_a_daemon_thread_that_does_not_survive_fork() -> None:
    release = threading.Event()
    handle = Background().start(release.wait, "test work")
    assert handle.alive()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if not handle.alive() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    release.set()
    assert handle._thread is not None
    handle._thread.join(timeout=10)
    assert not handle.alive()
