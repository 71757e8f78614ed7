"""The FastAPI gate under ``uvicorn --workers 2``: real processes, real Redis, real server.

``chatarmin-os serve`` is ChatarminOS; the app is ``tests/support/gated_app.py``. What
is measured here is the guarantee table of ``docs/guides/gating.md`` ("How exact is it?"):

* ``track=True`` with the quota ledger in Redis: 220 requests at concurrency 20 on a limit of
  100 -> exactly 100 answered 200, and the server's usage is 100 after SIGTERM; holds of
  answers that failed (500) are given back;
* ``meter="before"`` without Redis: exactly 100 and 100 (the server refuses past the limit);
* ``track=True`` with a ledger per process (no Redis): billing stays exact (100), but the
  workers, each holding against the usage it last saw, may admit more than 100.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.needs import require

require("fastapi", "fastapi")
require("uvicorn", "server")

from chatarmin_os import ChatarminOS  # noqa: E402
from tests.support.redis_server import RedisServer, free_port  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "os_sk_local_dev"  # chatarmin-os serve's key without $OS_API_KEY
START_TIMEOUT = 60.0


class Uvicorn:
    """``uvicorn tests.support.gated_app:app --workers 2`` on a free port."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"uvicorn-{self.port}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("GATES_")}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.support.gated_app:app",
                    "--workers",
                    "2",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "info",
                    "--no-access-log",
                ],
                cwd=ROOT,
                env={**environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, deadline: float) -> None:
        """Until both workers say their startup is complete, then ``/healthz`` answers."""
        while self.log.read_text().count("Application startup complete.") < 2:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn workers not ready: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)  # polling the log, bounded by the deadline
        with httpx.Client(timeout=10.0) as http:
            assert http.get(f"{self.url}/healthz").status_code == 200

    def terminate(self) -> int:
        """SIGTERM, as a process manager stops it: workers finish and close their clients."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def serve(workdir: Path) -> Iterator[ServeProcess]:
    server = ServeProcess.start([], workdir)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def admin(serve: ServeProcess) -> Iterator[ChatarminOS]:
    with ChatarminOS(api_key=API_KEY, base_url=serve.base_url) as client:
        yield client


def new_org(admin: ChatarminOS, org: str, limit: int) -> str:
    company = admin.companies.create(name=org, external_org_id=org, label="Gates")
    admin.features.set_access(
        company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=limit
    )
    return company.id


def usage(admin: ChatarminOS, company_id: str) -> int:
    return admin.features.check(company_id=company_id, feature_code="ai_credit").current_usage


def hammer(url: str, path: str, org: str, total: int, concurrency: int = 20) -> dict[int, int]:
    """``total`` POSTs at ``concurrency`` at once; how many got each status."""

    async def main() -> dict[int, int]:
        statuses: collections.Counter[int] = collections.Counter()
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as http:
            semaphore = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with semaphore:
                    answer = await http.post(path, headers={"X-Org-Id": org})
                    statuses[answer.status_code] += 1

            await asyncio.gather(*(one() for _ in range(total)))
        return dict(statuses)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def plain_app(workdir: Path, serve: ServeProcess) -> Iterator[Uvicorn]:
    """The app without Redis: a cache and a quota ledger per worker."""
    app = Uvicorn(workdir, {"OS_API_KEY": API_KEY, "CHATARMIN_OS_BASE_URL": serve.base_url})
    try:
        yield app
    finally:
        app.kill()


def test_holds_in_redis_are_exact_across_workers(
    workdir: Path, serve: ServeProcess, admin: ChatarminOS
) -> None:
    redis = RedisServer(workdir).start()
    try:
        env = {
            "OS_API_KEY": API_KEY,
            "CHATARMIN_OS_BASE_URL": serve.base_url,
            "GATES_REDIS_URL": redis.url,
        }
        busy = new_org(admin, "org_redis_100", 100)
        failing = new_org(admin, "org_redis_60", 60)
        app = Uvicorn(workdir, env)
        try:
            assert hammer(app.url, "/ai", "org_redis_100", 220) == {200: 100, 402: 120}
            assert hammer(app.url, "/fails", "org_redis_60", 60) == {500: 60}
            assert hammer(app.url, "/ai", "org_redis_60", 60) == {200: 60}
            assert hammer(app.url, "/ai", "org_redis_60", 1) == {402: 1}
        finally:
            assert app.terminate() == 0, app.log.read_text()[-2000:]
    finally:
        redis.stop()
    assert (usage(admin, busy), usage(admin, failing)) == (100, 60)


def test_meter_before_is_exact_across_workers_without_redis(
    plain_app: Uvicorn, admin: ChatarminOS
) -> None:
    company_id = new_org(admin, "org_before_100", 100)
    assert hammer(plain_app.url, "/before/ai", "org_before_100", 220) == {200: 100, 402: 120}
    assert usage(admin, company_id) == 100  # metered in the gate: no shutdown needed
    assert hammer(plain_app.url, "/before/fails", "org_before_100", 5) == {402: 5}
    failing = new_org(admin, "org_before_5", 5)
    assert hammer(plain_app.url, "/before/fails", "org_before_5", 5) == {500: 5}
    assert usage(admin, failing) == 5  # charged although the endpoint failed


def test_a_ledger_per_worker_keeps_billing_exact(plain_app: Uvicorn, admin: ChatarminOS) -> None:
    """No Redis, ``meter="after"``: each worker holds against what it knows; the server
    refuses the events past the limit, so billing is exact even when more was served."""
    company_id = new_org(admin, "org_local_100", 100)
    statuses = hammer(plain_app.url, "/ai", "org_local_100", 220)
    assert plain_app.terminate() == 0, plain_app.log.read_text()[-2000:]
    assert set(statuses) <= {200, 402} and sum(statuses.values()) == 220
    assert 100 <= statuses[200] <= 200  # each of the 2 workers admits at most the limit
    print(f"ledger per worker: {statuses[200]} of 220 admitted on a limit of 100")
    assert usage(admin, company_id) == 100
