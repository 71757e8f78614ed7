"""pytest plugin of chatarmin-os: a fresh local ChatarminOS per test.

Registered through the ``pytest11`` entry point, so installing the package is enough.
Fixtures: ``chatarmin_os_local`` (:class:`chatarmin_os.testing.LocalChatarminOS`),
``chatarmin_os_client`` (a bound ``ChatarminOS``) and ``chatarmin_os_async_client`` (a bound
``AsyncChatarminOS``), and ``chatarmin_os_server`` (:class:`chatarmin_os.testing.ChatarminOSServer`:
the same ChatarminOS over HTTP, with ``OS_API_KEY`` / ``CHATARMIN_OS_BASE_URL`` set for the
test). Nothing is imported until a test asks for one of them.
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
def chatarmin_os_client(chatarmin_os_local: LocalChatarminOS) -> ChatarminOS:
    """A blocking ``ChatarminOS`` bound to ``chatarmin_os_local``."""
    return chatarmin_os_local.client()


@pytest.fixture
def chatarmin_os_async_client(chatarmin_os_local: LocalChatarminOS) -> AsyncChatarminOS:
    """An ``AsyncChatarminOS`` bound to ``chatarmin_os_local``."""
    return chatarmin_os_local.async_client()


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
