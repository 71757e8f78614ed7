"""``chatarmin-os serve``: the local ChatarminOS over real HTTP, driven by the SDK and raw httpx."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
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
from chatarmin_os._version import __version__
from chatarmin_os.cli import main
from chatarmin_os.local import default_catalog, load_seed
from tests.support.serve_process import ServeProcess

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
    """A body over the server's limit (1 MiB) is refused with the contract's error envelope."""
    body = b'{"companyId":"c","contacts":[]' + b" " * (1024 * 1024) + b"}"
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

    from chatarmin_os.local._uvicorn import listen_socket

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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_under_load_drops_the_busy_clients_and_loses_nothing(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Four clients tracking usage and onboarding in batches of 100; then SIGTERM (or Ctrl-C).

    The server must exit (status 0) while the clients are still sending: it closes their
    connections instead of waiting for them to go quiet, so each client ends because its
    connection went, never because it was told to stop. After a restart every call it
    answered is counted: a call in flight either finished or left nothing (at most one per
    client may have been applied without its answer arriving).
    """
    db = tmp_path / "os.db"
    server = ServeProcess.start(["--api-key", KEY, "--db", str(db)], tmp_path)
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.base_url + "/", headers=headers) as http:
        company_id = http.post("companies.create", json={"name": "Busy Inc"}).json()["result"][
            "data"
        ]["id"]
        http.post(
            "tiers.applyTier", json={"tierCode": "enterprise", "companyId": company_id}
        ).raise_for_status()
    acknowledged = [0, 0, 0, 0]
    dropped = [False] * 4  # a client's connection went while it was still sending
    busy = threading.Event()
    stop = threading.Event()

    def track(index: int) -> None:
        with httpx.Client(base_url=server.base_url + "/", headers=headers, timeout=5) as client:
            number = 0
            while not stop.is_set():
                number += 1
                payload = {
                    "companyId": company_id,
                    "featureCode": "ai_credit",
                    "quantity": 1,
                    "idempotencyKey": f"t{index}-{number}",
                }
                try:
                    response = client.post("billing.trackUsage", json=payload)
                except httpx.TransportError:
                    dropped[index] = True
                    return
                if response.status_code == 200:
                    acknowledged[index] += 1
                    if sum(acknowledged) > 200:
                        busy.set()

    def onboard_batches() -> None:
        with httpx.Client(base_url=server.base_url + "/", headers=headers, timeout=5) as client:
            batch = 0
            while not stop.is_set():
                batch += 1
                paths = ",".join(["onboard"] * 100)
                inputs = {
                    str(i): {"externalOrgId": f"b{batch}-{i}", "label": "L"} for i in range(100)
                }
                try:
                    client.post(f"{paths}?batch=1", json=inputs)
                except httpx.TransportError:
                    dropped[3] = True
                    return

    workers = [threading.Thread(target=track, args=(i,)) for i in range(3)]
    workers.append(threading.Thread(target=onboard_batches))
    try:
        for worker in workers:
            worker.start()
        assert busy.wait(timeout=30), server.diagnostics()
        server.process.send_signal(sig)
        assert server.process.wait(timeout=30) == 0, server.diagnostics()  # bounded: a hang
        for worker in workers:  # not told to stop: only a dropped connection ends them
            worker.join(timeout=30)
        assert not any(worker.is_alive() for worker in workers)
        assert dropped == [True] * 4
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        server.kill()

    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        connection.close()
    again = ServeProcess.start(["--api-key", KEY, "--db", str(db)], tmp_path)
    try:
        with ChatarminOS(api_key=KEY, base_url=again.base_url, max_retries=0) as os:
            usage = os.features.check(company_id=company_id, feature_code="ai_credit")
        assert sum(acknowledged) <= usage.current_usage <= sum(acknowledged) + 3
    finally:
        assert again.terminate(timeout=5) == 0
        again.kill()


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "99999"], "argument --port: must be a port number from 0 to 65535"),
        (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
        (["--max-batch", "0"], "argument --max-batch: must be a whole number >= 1"),
        (["--read-timeout", "soon"], "argument --read-timeout: must be a number of seconds"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", *args])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""  # no banner
    assert err.count("\n") == 1 and err.startswith(f"chatarmin-os serve: {expected}"), err


def test_a_bad_database_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("these are my notes, not a database\n" * 100)
    cases = [
        (tmp_path / "missing" / "os.db", f"the folder {tmp_path / 'missing'} does not exist"),
        (tmp_path, "is a folder; give a file path"),
        (not_sqlite, "not a SQLite database"),
    ]
    for db, expected in cases:
        assert main(["serve", "--port", "0", "--db", str(db)]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err == f"chatarmin-os serve: --db {db}: {expected}\n" or (
            err.count("\n") == 1 and expected in err
        ), err
    assert not_sqlite.read_text().startswith("these are my notes")  # left alone


def test_a_port_in_use_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"chatarmin-os serve: cannot listen on 127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_version_and_catalog(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"chatarmin-os {__version__}\n"
    assert main(["catalog"]) == 0
    printed = capsys.readouterr().out
    seed = tmp_path / "catalog.json"
    seed.write_text(printed)
    assert load_seed(seed) == default_catalog()  # a starting point for --seed


def test_help_says_the_seed_replaces_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "that REPLACES the stored one" in text
    assert "$OS_API_KEY" in text


def test_the_api_key_from_the_environment_and_an_access_log(tmp_path: Path) -> None:
    server = ServeProcess.start(["--access-log"], tmp_path, env={"OS_API_KEY": "os_sk_from_env"})
    try:
        assert "os_sk_from_env" not in " ".join(server.process.args)  # not in `ps`
        with ChatarminOS(api_key="os_sk_from_env", base_url=server.base_url) as os:
            assert os.tiers.list()
        with (
            ChatarminOS(api_key="os_sk_local_dev", base_url=server.base_url, max_retries=0) as os,
            pytest.raises(AuthenticationError),
        ):
            os.tiers.list()
        assert server.terminate(timeout=5) == 0
        log = "\n".join(server.output())
        assert log.count('"GET /api/v1/tiers.list HTTP/1.1" 200') == 1, server.diagnostics()
        assert log.count('"GET /api/v1/tiers.list HTTP/1.1" 401') == 1
        assert "os_sk_" not in log.split("Ctrl-C stops it.")[1]  # keys never logged
    finally:
        server.kill()
