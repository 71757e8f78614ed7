"""The usage buffer inside real processes: fork, SIGKILL and a restart, two processes on one
spool, the interpreter's exit, trio and event loops, faults over real HTTP.

The server is a real ``chatarmin-os serve --db FILE`` (a subprocess); what it counted is read
from that database file. Processes are real: ``os.fork()`` children and subprocesses of
``tests/support/usage_buffer_process.py``, one of them killed with SIGKILL mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from chatarmin_os import AsyncChatarminOS, ChatarminOS, ChatarminOSError, UsageBufferOptions
from chatarmin_os.testing import ChatarminOSServer
from tests.support.serve_process import ServeProcess
from tests.support.served import KEY, Served

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("usage-buffer")
    db = workdir / "server.db"
    process = ServeProcess.start(["--api-key", KEY, "--db", str(db)], workdir)
    try:
        yield Served(process, db)
    finally:
        process.kill()


def spool_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM usage_spool").fetchone()[0])


def tracker(
    served: Served, mode: str, spool: Path | None, company_id: str, start: int, stop: int
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OS_API_KEY", "CHATARMIN_OS_LOG")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.usage_buffer_process",
            mode,
            served.base_url,
            KEY,
            str(spool) if spool is not None else "-",
            company_id,
            str(start),
            str(stop),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def finish(process: subprocess.Popen[str]) -> tuple[list[str], dict[str, Any] | None]:
    """Wait for a tracker; the indexes it printed and its final stats (``None``: none)."""
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-2000:]
    lines = out.splitlines()
    stats = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return [line for line in lines if not line.startswith("{")], stats


# --- crashes and restarts -------------------------------------------------------------------


def test_a_spooled_process_killed_mid_stream_loses_nothing_and_counts_once(
    served: Served, tmp_path: Path
) -> None:
    company_id = served.metered_company("Crash Co")
    spool = tmp_path / "usage.db"
    total = 4000
    first = tracker(served, "flush", spool, company_id, 0, total)
    assert first.stdout is not None
    last = -1
    for line in first.stdout:
        last = int(line)
        if last >= 1000:
            break
    first.send_signal(signal.SIGKILL)  # mid-stream: enqueuing, the worker sending
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL
    before = sum(served.counted(company_id).values())
    assert before < total
    # The restarted process sends what the first left (rows it had leased included, at
    # once: their owner is dead) and tracks the rest, from the first index not confirmed.
    second = tracker(served, "flush", spool, company_id, last + 1, total)
    _, stats = finish(second)
    assert stats is not None and stats["left"] == 0 and stats["pending"] == 0
    counted = served.counted(company_id)
    assert counted == {f"ev-{index}": 1 for index in range(total)}  # exact: each key once
    assert spool_count(spool) == 0


def test_two_processes_share_one_spool_without_sending_a_row_twice(
    served: Served, tmp_path: Path
) -> None:
    company_id = served.metered_company("Shared Spool Co")
    spool = tmp_path / "usage.db"
    processes = [
        tracker(served, "flush", spool, company_id, 0, 1500),
        tracker(served, "flush", spool, company_id, 1500, 3000),
    ]
    results = [finish(process) for process in processes]
    stats = [result[1] for result in results]
    assert all(s is not None and s["left"] == 0 for s in stats)
    assert sum(s["sent"] for s in stats if s) == 3000  # each row sent by one of them, once
    assert sum(s["duplicates"] for s in stats if s) == 0
    assert served.counted(company_id) == {f"ev-{index}": 1 for index in range(3000)}
    assert spool_count(spool) == 0


def test_the_sync_client_flushes_at_interpreter_exit(served: Served) -> None:
    company_id = served.metered_company("Exit Co")
    lines, stats = finish(tracker(served, "exit", None, company_id, 0, 250))
    assert len(lines) == 250 and stats is None  # no flush, no close: only the exit
    assert served.counted(company_id) == {f"ev-{index}": 1 for index in range(250)}


# --- fork -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spooled", [False, True], ids=["memory", "spool"])
def test_a_forked_child_has_a_buffer_of_its_own_and_nothing_is_sent_twice(
    served: Served, tmp_path: Path, spooled: bool
) -> None:
    company_id = served.metered_company(f"Fork Co {spooled}")
    spool = str(tmp_path / "usage.db") if spooled else None
    client = served.client(usage_buffer=UsageBufferOptions(flush_interval=3600, spool=spool))
    for index in range(5):
        client.billing.track_usage_later(
            company_id=company_id, feature_code="ai_credit", quantity=1, idempotency_key=f"p{index}"
        )
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            stats = client.usage_buffer.stats()
            expected_pending = 5 if spooled else 0  # a spool is shared: the parent's rows show
            if (stats.pending, stats.sent) == (expected_pending, 0):
                for index in range(3):
                    client.billing.track_usage_later(
                        company_id=company_id,
                        feature_code="ai_credit",
                        quantity=1,
                        idempotency_key=f"c{index}",
                    )
                left = client.flush(timeout=30)
                after = client.usage_buffer.stats()
                sent_ok = after.sent == 8 if spooled else after.sent == 3
                code = 0 if (left, after.duplicates, sent_ok) == (0, 0, True) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    stats = client.usage_buffer.stats()
    if spooled:  # the child sent the shared rows (its flush covered them): none left here
        assert (stats.pending, stats.sent) == (0, 0)
    else:
        assert (stats.pending, stats.sent) == (5, 0)  # the parent's events are still its own
    assert client.flush(timeout=30) == 0
    client.close()
    assert client.usage_buffer.stats().duplicates == 0
    expected = {f"p{i}": 1 for i in range(5)} | {f"c{i}": 1 for i in range(3)}
    assert served.counted(company_id) == expected


# --- event loops ----------------------------------------------------------------------------


def test_under_trio_the_buffer_needs_async_with(served: Served) -> None:
    company_id = served.metered_company("Trio Co")

    async def main() -> int:
        outside = AsyncChatarminOS(api_key=KEY, base_url=served.base_url)
        with pytest.raises(ChatarminOSError, match="async with"):
            await outside.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=1
            )
        assert outside.usage_buffer.stats().pending == 0  # refused before it was enqueued
        await outside.aclose()
        async with AsyncChatarminOS(
            api_key=KEY,
            base_url=served.base_url,
            usage_buffer=UsageBufferOptions(flush_interval=3600),
        ) as client:
            for index in range(30):
                await client.billing.track_usage_later(
                    company_id=company_id,
                    feature_code="ai_credit",
                    quantity=1,
                    idempotency_key=f"t{index}",
                )
            assert await client.flush(timeout=30) == 0
            for index in range(30, 40):
                await client.billing.track_usage_later(
                    company_id=company_id,
                    feature_code="ai_credit",
                    quantity=1,
                    idempotency_key=f"t{index}",
                )
        return client.usage_buffer.stats().sent  # leaving `async with` flushed the rest

    assert trio.run(main) == 40
    assert served.counted(company_id) == {f"t{index}": 1 for index in range(40)}


def test_an_async_client_buffers_across_event_loops(served: Served) -> None:
    company_id = served.metered_company("Loops Co")
    client = AsyncChatarminOS(
        api_key=KEY, base_url=served.base_url, usage_buffer=UsageBufferOptions(flush_interval=3600)
    )

    async def enqueue(start: int) -> None:
        for index in range(start, start + 10):
            await client.billing.track_usage_later(
                company_id=company_id,
                feature_code="ai_credit",
                quantity=1,
                idempotency_key=f"l{index}",
            )

    asyncio.run(enqueue(0))  # the loop ends with the events pending, its worker gone
    asyncio.run(enqueue(10))  # a worker of this loop sends them all on flush

    async def flush_and_close() -> int:
        left = await client.flush(timeout=30)
        await client.aclose()
        return left

    assert asyncio.run(flush_and_close()) == 0
    assert served.counted(company_id) == {f"l{index}": 1 for index in range(20)}


# --- faults over HTTP -----------------------------------------------------------------------


def test_faults_over_http_leave_the_exact_total() -> None:
    """Answers dropped after the server applied them, 503s and HTML pages, over real HTTP."""
    with ChatarminOSServer() as server:
        company_id = server.add_company("Acme", limits={"ai_credit": None})
        faults = server.faults
        for _ in range(6):
            faults.drop_next("billing.trackUsage", times=2)
            faults.fail_next("billing.trackUsage", status=503, retry_after=0)
            faults.fail_next(
                "billing.trackUsage", status=502, body="<html><body>Bad gateway</body></html>"
            )
        waits: list[float] = []
        client = ChatarminOS(
            api_key=server.api_key,
            base_url=server.base_url,
            sleep=waits.append,
            usage_buffer=UsageBufferOptions(flush_interval=3600),
        )
        client.usage_buffer._manual = True  # everything enqueued first, then sent by flush()
        total = 2000
        for _ in range(total):
            client.billing.track_usage_later(
                company_id=company_id, feature_code="ai_credit", quantity=1
            )
        assert client.flush(timeout=60) == 0
        client.close()
        assert faults.pending() == []
        assert len(faults.fired) == 24
        server.assert_usage(company_id, "ai_credit", total)
        stats = client.usage_buffer.stats()
        assert (stats.sent, stats.refused, stats.dropped) == (total, 0, 0)
        # The first two batches (sent at once) met all 24 faults, the first two of them
        # dropped answers (applied): their 200 events came back as duplicates.
        assert stats.duplicates == 200
        assert stats.retries == 12 * 200


class FaultyProxy:
    """An HTTP proxy in front of a server that, seeded at random, drops the answer after the
    server applied the request (closing the connection), or answers itself: a 503 tRPC
    error, an HTML 502 page, an HTML 200 page. The rest it forwards."""

    def __init__(self, upstream: str, seed: int) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from random import Random

        random = Random(seed)
        lock = threading.Lock()
        self.fired: dict[str, int] = {}
        forward = httpx.Client(base_url=upstream)
        fired = self.fired

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def answer(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(size) if size else b""
                with lock:
                    roll = random.random()
                kind = (
                    "lost"
                    if roll < 0.10
                    else "503"
                    if roll < 0.18
                    else "html 502"
                    if roll < 0.23
                    else "html 200"
                    if roll < 0.28
                    else "forwarded"
                )
                with lock:
                    fired[kind] = fired.get(kind, 0) + 1
                status, content_type, content = 200, "text/html", b"<html>proxy</html>"
                if kind in ("lost", "forwarded"):
                    headers = {
                        name: value
                        for name, value in self.headers.items()
                        if name.lower() in ("authorization", "content-type")
                    }
                    answer = forward.request(self.command, self.path, content=body, headers=headers)
                    if kind == "lost":  # applied by the server, the answer never arrives
                        self.close_connection = True
                        return
                    status, content_type, content = (
                        answer.status_code,
                        answer.headers["content-type"],
                        answer.content,
                    )
                elif kind == "503":
                    status, content_type = 503, "application/json"
                    error = {"code": "SERVICE_UNAVAILABLE", "httpStatus": 503}
                    content = json.dumps(
                        {"error": {"message": "busy", "code": -32603, "data": error}}
                    ).encode()
                elif kind == "html 502":
                    status = 502
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._forward = forward
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/api/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._forward.close()


def test_random_faults_through_a_proxy_leave_the_exact_total_with_the_worker() -> None:
    """Thousands of events through a proxy that loses answers after the server applied
    them and answers 503s and HTML pages, at random: the worker (not the caller) sends,
    nothing is raised, and the server counts each event once."""
    with ChatarminOSServer() as server:
        company_id = server.add_company("Acme", limits={"ai_credit": None})
        proxy = FaultyProxy(server.base_url.removesuffix("/api/v1"), seed=7)
        waits: list[float] = []
        client = ChatarminOS(
            api_key=server.api_key,
            base_url=proxy.base_url,
            sleep=waits.append,  # backoff noted, not waited
            usage_buffer=UsageBufferOptions(),
        )
        try:
            total = 5000
            for _ in range(total):
                client.billing.track_usage_later(
                    company_id=company_id, feature_code="ai_credit", quantity=1
                )
            assert client.flush(timeout=120) == 0
            client.close()
        finally:
            proxy.close()
        server.assert_usage(company_id, "ai_credit", total)
        stats = client.usage_buffer.stats()
        assert (stats.sent, stats.refused, stats.dropped, stats.pending) == (total, 0, 0, 0)
        assert stats.duplicates > 0 and stats.retries > 0
        assert set(proxy.fired) == {"lost", "503", "html 502", "html 200", "forwarded"}


def test_enqueueing_does_not_touch_the_network_while_the_server_is_down() -> None:
    """No server listens: every call returns at once with its key, and close is bounded."""
    sent: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ConnectError("Connection refused", request=request)

    backoff = threading.Event()  # the worker's backoff lasts until the test ends it
    client = ChatarminOS(
        api_key=KEY,
        base_url="http://127.0.0.1:9/api/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(refuse)),
        sleep=lambda seconds: backoff.wait(30),
        usage_buffer=UsageBufferOptions(flush_interval=3600, close_timeout=0.2),
    )
    try:
        keys = [
            client.billing.track_usage_later(company_id="c1", feature_code="ai_credit", quantity=1)
            for _ in range(5000)
        ]
        assert len(set(keys)) == 5000
        stats = client.usage_buffer.stats()
        assert stats.pending == 5000 and stats.dropped == 0
        assert stats.last_error is not None and "ConnectError" in stats.last_error
        client.close()  # waits 0.2 s for the worker, then gives up: no spool, events lost
        # The first full batch (or two at once), sent, sent again at once (a blip?), then
        # held back by the backoff.
        assert 2 <= len(sent) <= 4
        assert client.usage_buffer.stats().pending == 5000
    finally:
        client.close()
        backoff.set()


def test_exit_waits_one_close_timeout_for_all_buffers_together() -> None:
    """Three clients with pending events and no ChatarminOS: the first buffer closed at exit
    waits its close_timeout, the others get what is left of that same bound (nothing)."""
    script = (
        "from chatarmin_os import ChatarminOS, UsageBufferOptions\n"
        "options = UsageBufferOptions(close_timeout=0.5)\n"
        "clients = [ChatarminOS(api_key='os_sk_x', base_url='http://127.0.0.1:9/api/v1',"
        " usage_buffer=options) for _ in range(3)]\n"
        "for client in clients:\n"
        "    client.billing.track_usage_later(company_id='c1', feature_code='f', quantity=1)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OS_API_KEY", "CHATARMIN_OS_LOG")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    lost = [line for line in done.stderr.splitlines() if "not sent within" in line]
    waited = [float(line.split("within ")[1].split(" s")[0]) for line in lost]
    assert len(waited) == 3 and waited[0] == 0.5
    assert all(seconds < 0.05 for seconds in waited[1:])  # the bound was spent
