"""pytest plugin of chatarmin-os: a fresh local ChatarminOS per test.

Registered through the ``pytest11`` entry point, so installing the package is enough.
Fixtures: ``chatarmin_os_local`` (:class:`chatarmin_os.testing.LocalChatarminOS`),
``chatarmin_os_client`` (a bound ``ChatarminOS``) and ``chatarmin_os_async_client`` (a bound
``AsyncChatarminOS``). Nothing is imported until a test asks for one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chatarmin_os import AsyncChatarminOS, ChatarminOS
    from chatarmin_os.testing import LocalChatarminOS


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
