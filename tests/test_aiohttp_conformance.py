"""The wire-conformance and batching-conformance suites again, through ``DefaultAioHttpClient``.

The cases are those of ``tests/_async/test_conformance.py`` and
``tests/_async/test_batching_conformance.py`` (imported, so pytest runs them here too); only
the ``http_client`` the clients send through is replaced by one on aiohttp. (Cases that
make their own client without ``http_client`` run on httpx here as there.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import tests._async.test_batching_conformance as batching_cases
from chatarmin_os import AsyncChatarminOS, BatchOptions, DefaultAioHttpClient
from tests._async.test_batching_conformance import *  # noqa: F403
from tests._async.test_conformance import *  # noqa: F403
from tests.support.helpers import API_KEY
from tests.support.reference_server import ReferenceServer


@pytest.fixture
async def http_client() -> AsyncIterator[DefaultAioHttpClient]:
    async with DefaultAioHttpClient() as http_client:
        yield http_client


@pytest.fixture(autouse=True)
def batching_over_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batching cases make their clients with ``batching_client``: on aiohttp here."""

    def batching_client(server: ReferenceServer, **options: Any) -> AsyncChatarminOS:
        return AsyncChatarminOS(
            api_key=API_KEY,
            base_url=server.base_url,
            transformer=server.mode,  # type: ignore[arg-type]
            max_retries=0,
            batching=BatchOptions(**options),
            http_client=DefaultAioHttpClient(),
        )

    monkeypatch.setattr(batching_cases, "batching_client", batching_client)
