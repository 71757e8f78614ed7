"""``chatarmin-os serve``: the local ChatarminOS over real HTTP, driven by the SDK and raw httpx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    AuthenticationError,
    ChatarminOS,
    PreconditionFailedError,
    UsageResult,
)
from tests.local.serve_process import ServeProcess

KEY = "os_sk_test"


@pytest.fixture(scope="module")
def memory_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One in-memory server shared by the tests that do not restart it."""
    server = ServeProcess.start(["--api-key", KEY], tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        server.kill()


def test_serve_keeps_data_across_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "os.db"
    args = ["--db", str(db), "--api-key", KEY]
    server = ServeProcess.start(args, tmp_path)
    try:
        assert server.stdout[0] == f"ChatarminOS local server on {server.base_url}"
        deadline = time.monotonic() + 10
        assert server.next_line(deadline) == f"  1 API key(s) given; data {db}; transformer auto"
        assert server.next_line(deadline) == "  Ctrl-C stops it."
        with ChatarminOS(api_key=KEY, base_url=server.base_url, max_retries=0) as os:
            result = os.onboard(
                external_org_id="org_serve",
                label="Serve Test",
                hints={"company_name": "Served Inc", "domain": "served.example"},
                tier_code="free",
                contact_email="owner@served.example",
            )
            assert result.link_status == "created"
            assert result.billing_status is not None and result.billing_status.tier_applied
            usage = os.billing.track_usage(
                company_id=result.company_id,
                feature_code="ai_credit",
                quantity=7,
                idempotency_key="serve-req-1",
            )
            assert (usage.current_usage, usage.remaining, usage.duplicate) == (7, 93, False)
            with pytest.raises(PreconditionFailedError) as info:
                os.billing.track_usage(
                    company_id=result.company_id, feature_code="ai_credit", quantity=94
                )
            assert info.value.status_code == 412

        # curl-style: a raw GET with the input in the query string.
        url = f"{server.base_url}/tiers.get?input=" + quote(
            json.dumps({"tierCode": "pro"}), safe=""
        )
        idle = httpx.Client()  # keeps its connection open while the server is stopped
        raw = idle.get(url, headers={"Authorization": f"Bearer {KEY}"})
        assert raw.status_code == 200
        assert raw.headers["content-type"] == "application/json"
        tier = raw.json()["result"]["data"]
        assert (tier["code"], tier["stripePriceIds"]) == (
            "pro",
            ["price_pro_base", "price_pro_ai_credit"],
        )
        assert tier["baseFee"]["stripe"]["unitAmount"] == 4900
        denied = httpx.get(url, headers={"Authorization": "Bearer os_sk_wrong"})
        assert denied.status_code == 401
        assert denied.json()["error"]["data"]["code"] == "UNAUTHORIZED"

        assert server.interrupt(timeout=5) == 0, server.diagnostics()
        idle.close()
    finally:
        server.kill()
    assert db.exists()

    again = ServeProcess.start(args, tmp_path)
    try:
        with ChatarminOS(api_key=KEY, base_url=again.base_url, max_retries=0) as os:
            company = os.companies.get_by_product_link(external_org_id="org_serve")
            assert company is not None
            assert (company.id, company.name, company.domain) == (
                result.company_id,
                "Served Inc",
                "served.example",
            )
            access = os.features.check(company_id=company.id, feature_code="ai_credit")
            assert (access.current_usage, access.quantity_limit, access.remaining) == (7, 100, 93)
            # The idempotency key survived too: the retry is a duplicate.
            retry = os.billing.track_usage(
                company_id=company.id,
                feature_code="ai_credit",
                quantity=7,
                idempotency_key="serve-req-1",
            )
            assert (retry.duplicate, retry.current_usage) == (True, 7)
            [contact] = os.contacts.list(company.id)
            assert (contact.email, contact.is_primary) == ("owner@served.example", True)
            again_onboard = os.onboard(external_org_id="org_serve", label="Serve Test")
            assert again_onboard.link_status == "already_linked"
        assert again.interrupt(timeout=10) == 0, again.diagnostics()
    finally:
        again.kill()


def test_serve_refuses_a_wrong_key_through_the_sdk(memory_server: ServeProcess) -> None:
    with (
        ChatarminOS(api_key="os_sk_wrong", base_url=memory_server.base_url, max_retries=0) as os,
        pytest.raises(AuthenticationError) as info,
    ):
        os.tiers.list()
    assert (info.value.status_code, info.value.code) == (401, "UNAUTHORIZED")


def test_serve_too_large_body_is_a_trpc_error(memory_server: ServeProcess) -> None:
    """A body over the server's limit (64 MiB) is refused with the contract's error envelope."""
    body = b'{"companyId":"c","contacts":[]' + b" " * (64 * 1024 * 1024) + b"}"
    response = httpx.post(
        f"{memory_server.base_url}/contacts.bulkUpsert",
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json", response.text
    error = response.json()["error"]
    assert error["code"] == -32013
    assert error["data"]["code"] == "PAYLOAD_TOO_LARGE"
    assert error["data"]["httpStatus"] == 413


async def test_serve_concurrent_usage_over_http(memory_server: ServeProcess) -> None:
    """60 concurrent track_usage(3) over real sockets against a limit of 100."""
    async with AsyncChatarminOS(api_key=KEY, base_url=memory_server.base_url, max_retries=0) as os:
        company = await os.companies.create(name="Concurrent Co")
        await os.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=100
        )
        accepted: list[UsageResult] = []
        refused: list[PreconditionFailedError] = []

        async def one() -> None:
            try:
                accepted.append(
                    await os.billing.track_usage(
                        company_id=company.id, feature_code="ai_credit", quantity=3
                    )
                )
            except PreconditionFailedError as error:
                refused.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(60):
                group.start_soon(one)
        access = await os.features.check(company_id=company.id, feature_code="ai_credit")
    assert len(accepted) + len(refused) == 60
    assert access.current_usage == 3 * len(accepted) == 99
    assert sorted(r.current_usage for r in accepted) == list(range(3, 100, 3))


def test_the_listening_socket_is_tcp_with_nodelay() -> None:
    # Without TCP_NODELAY every keep-alive request stalls ~40 ms (Nagle + delayed ACK);
    # asyncio only sets it on sockets created with IPPROTO_TCP.
    import socket

    from chatarmin_os.local.cli import listen_socket

    sock = listen_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    server = ServeProcess.start(["--db", str(tmp_path / "os.db")], tmp_path)
    try:
        assert server.terminate(timeout=5) == 0, server.diagnostics()
    finally:
        server.kill()
