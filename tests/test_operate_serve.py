"""Request ids, raw responses and per-call options against ``chatarmin-os serve`` (a real
process over HTTP), with both clients."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from chatarmin_os import AsyncChatarminOS, ChatarminOS, NotFoundError
from tests.support.serve_process import ServeProcess

KEY = "os_sk_operate_test"
REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    process = ServeProcess.start(["--api-key", KEY], tmp_path_factory.mktemp("operate"))
    try:
        yield process
    finally:
        process.kill()


def test_the_blocking_client_against_serve(server: ServeProcess) -> None:
    with ChatarminOS(api_key=KEY, base_url=server.base_url) as client:
        tier = client.tiers.get("pro", extra_headers={"X-Trace": "t-1"}, timeout=10.0)
        assert tier._request_id is not None and REQUEST_ID.fullmatch(tier._request_id)
        with pytest.raises(NotFoundError) as info:
            client.tiers.get("no_such_tier")
        request_id = info.value.response.headers["x-request-id"]
        assert info.value.request_id == request_id != tier._request_id
        assert str(info.value).endswith(f"[request_id: {request_id}]")
        response = client.with_raw_response.tiers.list(timeout=httpx.Timeout(10.0))
        assert response.status_code == 200
        assert REQUEST_ID.fullmatch(response.headers["x-request-id"])
        assert response.request_id == response.headers["x-request-id"]
        assert response.parse() == client.tiers.list()
        assert str(response.http_request.url) == f"{server.base_url}/tiers.list"  # either library
        assert KEY not in repr(response) and KEY not in repr(response.http_request)


async def test_the_async_client_against_serve(server: ServeProcess) -> None:
    async with AsyncChatarminOS(api_key=KEY, base_url=server.base_url) as client:
        onboarded = await client.onboard(
            external_org_id="org_serve", label="App", tier_code="free", timeout=10.0
        )
        assert onboarded._request_id is not None
        response = await client.with_raw_response.tiers.list()
        assert response.status_code == 200 and response.request_id is not None
        tiers = response.parse()
        assert tiers == await client.tiers.list()
        assert {tier._request_id for tier in tiers} == {response.request_id}
        with pytest.raises(NotFoundError) as info:
            await client.features.check_by_external_org_id("org_nobody", "ai_credit")
        assert info.value.request_id is not None
        assert REQUEST_ID.fullmatch(info.value.request_id)
