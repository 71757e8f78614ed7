"""pytest plugin of chatarmin-os: a fresh local ChatarminOS per test.

Registered through the ``pytest11`` entry point, so installing the package is enough.
Fixtures: ``chatarmin_os_local`` (:class:`chatarmin_os.testing.LocalChatarminOS`),
``chatarmin_os_client`` (a bound ``ChatarminOS``) and ``chatarmin_os_async_client`` (a bound
``AsyncChatarminOS``), and ``chatarmin_os_server`` (:class:`chatarmin_os.testing.ChatarminOSServer`:
the same ChatarminOS over HTTP, with ``OS_API_KEY`` / ``CHATARMIN_OS_BASE_URL`` set for the
test). Nothing is imported until a test asks for one of them.

The bound clients are closed at teardown, which flushes their usage buffers
(``billing.track_usage_later``) before the local ChatarminOS goes away; to assert on
buffered usage inside the test, call ``client.flush()`` first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chatarmin_os import AsyncChatarminOS, ChatarminOS
    from chatarmin_os.testing import ChatarminOSServer, LocalChatarminOS


@pytest.fixture
def chatarmin_os_local() -> Iterator[LocalChatarminOS]:
    """A fresh in-memory local ChatarminOS with the default catalog, closed after the test."""
    from chatarmin_os.testing import LocalChatarminOS

    local = LocalChatarminOS()
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def chatarmin_os_client(chatarmin_os_local: LocalChatarminOS) -> Iterator[ChatarminOS]:
    """A blocking ``ChatarminOS`` bound to ``chatarmin_os_local`` (closed, so flushed, after)."""
    client = chatarmin_os_local.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def chatarmin_os_async_client(chatarmin_os_local: LocalChatarminOS) -> Iterator[AsyncChatarminOS]:
    """An ``AsyncChatarminOS`` bound to ``chatarmin_os_local`` (its usage flushed after)."""
    client = chatarmin_os_local.async_client()
    try:
        yield client
    finally:
        _flush_async(client)


def _flush_async(client: AsyncChatarminOS) -> None:
    """Close an async client that buffered usage, in an event loop of its own."""
    import asyncio

    if client.is_closed or not client._usage_buffers:
        return
    if asyncio._get_running_loop() is not None:  # pragma: no cover - a loop runs: cannot
        return
    asyncio.run(client.aclose())


@pytest.fixture
def chatarmin_os_server(
    chatarmin_os_local: LocalChatarminOS, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ChatarminOSServer]:
    """``chatarmin_os_local`` served over HTTP on a free port of 127.0.0.1 for this test.

    Sets ``OS_API_KEY`` and ``CHATARMIN_OS_BASE_URL`` (restored after), so code that makes
    its own client talks to it. Shares the engine and the faults with ``chatarmin_os_local``.
    """
    from chatarmin_os.testing import ChatarminOSServer

    server = ChatarminOSServer(chatarmin_os_local).start()
    try:
        for name, value in server.environ().items():
            monkeypatch.setenv(name, value)
        yield server
    finally:
        server.close()
