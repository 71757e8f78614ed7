"""The wire-conformance suite again, with an ``httpx2.AsyncClient`` passed as ``http_client=``.

The cases are those of ``tests/_async/test_conformance.py`` (imported, so pytest runs them
here too); only the ``http_client`` fixture is replaced by one of httpx2. (Cases that make
their own client without ``http_client`` run on the default pool here as there.)
"""

from __future__ import annotations

from typing import Any

import pytest

from chatarmin_os import APIStatusError
from tests._async.test_conformance import *  # noqa: F403
from tests._async.test_conformance import SSL_CONTEXT

httpx2 = pytest.importorskip("httpx2", reason="httpx2 is not installed (Python 3.11+)")


@pytest.fixture
async def http_client() -> Any:
    async with httpx2.AsyncClient(verify=SSL_CONTEXT) as http_client:
        yield http_client


async def test_the_calls_go_through_the_httpx2_client(client: Any, http_client: Any) -> None:
    assert client._pool.client() is http_client
    with pytest.raises(APIStatusError) as caught:
        await client.tiers.get("error:NOT_FOUND")
    assert caught.value.status_code == 404
    # The answer came through httpx2: its response and the request it answered are httpx2's.
    assert isinstance(caught.value.response, httpx2.Response)
    assert isinstance(caught.value.response.request, httpx2.Request)
    assert caught.value.response.request.url.path.endswith("/tiers.get")
