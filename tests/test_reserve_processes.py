"""``billing.reserve`` with real processes: a real ``chatarmin-os serve`` and ``redis-server``.

Threads and processes sharing the Redis ledger, threads sharing the ledger of one process,
a hold left by a process killed with SIGKILL, ``os.fork()``, Redis dying mid-run, and the
async client under asyncio (Redis) and trio (the ledger in the process). The worker
processes are ``tests/reserve_process.py``; the server's usage is its ``features.check``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    CacheOptions,
    ChatarminOS,
    PreconditionFailedError,
    ReservationOptions,
    UsageBufferOptions,
)
from tests.support.redis_server import RedisServer
from tests.support.reserve_process import FEATURE, Boom, hammer
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL")

KEY = "os_sk_reserve_process_test"
ROOT = Path(__file__).resolve().parent.parent


class Served:
    """A ``chatarmin-os serve`` and a ``redis-server``."""

    def __init__(self, process: ServeProcess, redis_url: str) -> None:
        self.base_url = process.base_url
        self.redis_url = redis_url

    def client(self, *, redis: bool = True, **options: Any) -> ChatarminOS:
        cache = CacheOptions(redis_url=self.redis_url) if redis else None
        return ChatarminOS(api_key=KEY, base_url=self.base_url, cache=cache, **options)

    def company(self, name: str, limit: int | None) -> str:
        with ChatarminOS(api_key=KEY, base_url=self.base_url) as client:
            company = client.companies.create(name=name)
            client.features.set_access(
                company_id=company.id, feature_code=FEATURE, is_enabled=True, quantity_limit=limit
            )
        return company.id

    def usage(self, company_id: str) -> int:
        with ChatarminOS(api_key=KEY, base_url=self.base_url) as client:
            return client.features.check(company_id=company_id, feature_code=FEATURE).current_usage


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("reserve")
    redis = RedisServer(workdir).start()
    try:
        process = ServeProcess.start(["--api-key", KEY], workdir)
        try:
            yield Served(process, redis.url)
        finally:
            process.kill()
    finally:
        redis.stop()


def worker(served: Served, *args: str, redis: bool = True) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OS_API_KEY", "CHATARMIN_OS_LOG")}
    redis_url = served.redis_url if redis else "-"
    mode, rest = args[0], args[1:]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.reserve_process",
            mode,
            served.base_url,
            KEY,
            redis_url,
            *rest,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


# --- exact across threads and processes -------------------------------------------------------


def test_three_processes_of_six_threads_sharing_redis_commit_exactly_the_limit(
    served: Served,
) -> None:
    company_id = served.company("Fleet Co", 100)
    processes = [worker(served, "hammer", company_id, "100", "6") for _ in range(3)]
    keys: list[str] = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        result = json.loads(out.splitlines()[-1])
        assert result["left"] == 0
        keys += result["keys"]
    assert len(keys) == 100 and len(set(keys)) == 100
    assert served.usage(company_id) == 100


def test_eight_threads_with_the_ledger_in_the_process_commit_exactly_the_limit(
    served: Served,
) -> None:
    company_id = served.company("Threads Co", 50)
    client = served.client(redis=False)
    keys = hammer(client, company_id, 50, 8)
    assert client.flush(timeout=60) == 0
    client.close()
    assert len(keys) == 50 and len(set(keys)) == 50
    assert served.usage(company_id) == 50


# --- crashes, exceptions, fork ---------------------------------------------------------------


class WallClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_a_hold_of_a_killed_process_blocks_until_its_hold_timeout(served: Served) -> None:
    company_id = served.company("Killed Co", 5)
    holder = worker(served, "hold", company_id, "5")
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    client = served.client()
    clock = WallClock()
    client._reservations().ledger._wall = clock  # the clock the ledger's scripts are given
    with pytest.raises(PreconditionFailedError, match="0 of 5 left"):
        client.billing.reserve(company_id=company_id, feature_code=FEATURE)
    clock.offset = 30.001  # the holder's hold_timeout has passed
    with client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=5) as r:
        assert r.remaining == 0
    assert client.flush(timeout=30) == 0
    client.close()
    assert served.usage(company_id) == 5


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "memory"])
def test_an_exception_releases_and_a_late_commit_warns_once(
    served: Served, redis: bool, caplog: pytest.LogCaptureFixture
) -> None:
    company_id = served.company(f"Release Co {redis}", 2)
    client = served.client(redis=redis, reservations=ReservationOptions(hold_timeout=10))
    for _ in range(3):
        with pytest.raises(Boom):
            with client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=2):
                raise Boom
    late = [client.billing.reserve(company_id=company_id, feature_code=FEATURE) for _ in range(2)]
    clock = WallClock()
    ledger = client._reservations().ledger
    if redis:
        ledger._wall = clock
    else:
        ledger.memory._clock = lambda: time.monotonic() + clock.offset
    clock.offset = 10.001  # both holds expired: the commits still meter, one warning
    with caplog.at_level(logging.WARNING, logger="chatarmin_os"):
        for reservation in late:
            reservation.commit()
        # The commits reach Redis with the next round trip (a flush sends them): the
        # expired holds are found then.
        assert client.flush(timeout=30) == 0
    warnings = [r for r in caplog.records if "after its hold expired" in r.getMessage()]
    assert len(warnings) == 1
    client.close()
    assert served.usage(company_id) == 2


def test_a_forked_child_has_its_own_ledger_state_and_shares_the_holds_in_redis(
    served: Served,
) -> None:
    company_id = served.company("Fork Co", 5)
    client = served.client()
    with client.billing.reserve(company_id=company_id, feature_code=FEATURE):
        pass
    held = client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=3)
    ledger = client._reservations().ledger
    assert ledger._scripts is not None
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            fresh = ledger._scripts is None and ledger._flights == {}
            with client.billing.reserve(company_id=company_id, feature_code=FEATURE) as mine:
                shared = mine.remaining == 0  # 1 committed + the parent's 3 held + this 1
            try:
                client.billing.reserve(company_id=company_id, feature_code=FEATURE)
                refused = False
            except PreconditionFailedError:
                refused = True
            left = client.flush(timeout=30)
            code = 0 if (fresh, shared, refused, left) == (True, True, True, 0) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    held.commit(quantity=2)  # the parent's hold is still its own
    assert client.flush(timeout=30) == 0
    client.close()
    assert served.usage(company_id) == 4


def test_a_forked_child_without_redis_starts_with_an_empty_ledger(served: Served) -> None:
    company_id = served.company("Fork Memory Co", 3)
    client = served.client(redis=False)
    held = client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=3)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            empty = client._reservations().ledger.memory.figures((company_id, FEATURE)) is None
            # The child asks the server: the parent's hold is the parent's (nothing metered).
            with client.billing.reserve(company_id=company_id, feature_code=FEATURE) as mine:
                remaining = mine.remaining
            code = 0 if (empty, remaining, client.flush(timeout=30)) == (True, 2, 0) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    held.release()
    client.close()
    assert served.usage(company_id) == 1


# --- Redis going away ----------------------------------------------------------------------


def test_redis_dying_mid_run_moves_the_ledger_into_the_process(
    served: Served, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path).start()
    company_id = served.company("Outage Co", 10)
    client = ChatarminOS(
        api_key=KEY, base_url=served.base_url, cache=CacheOptions(redis_url=redis.url)
    )
    try:
        before = client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=2)
        assert before._in_redis
        redis.kill()
        after = client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=3)
        assert not after._in_redis  # asked the server again, held in this process
        assert after.remaining == 7
        assert client.cache.stats().redis_errors >= 1
        before.commit()  # its hold was in Redis: metered all the same
        after.commit()
        assert client.flush(timeout=30) == 0
    finally:
        client.close()
        redis.stop()
    assert served.usage(company_id) == 5


def test_commits_pending_when_redis_dies_are_done_in_the_process(
    served: Served, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path).start()
    company_id = served.company("Pending Co", 10)
    client = ChatarminOS(
        api_key=KEY,
        base_url=served.base_url,
        cache=CacheOptions(redis_url=redis.url),
        usage_buffer=UsageBufferOptions(flush_interval=3600),  # sent on flush only
    )
    try:
        held = [
            client.billing.reserve(company_id=company_id, feature_code=FEATURE, quantity=n)
            for n in (2, 3)
        ]
        assert all(reservation._in_redis for reservation in held)
        for reservation in held:
            reservation.commit()
        ledger = client._reservations().ledger
        assert len(ledger.pending) == 2  # both commits wait for the next round trip
        redis.kill()
        assert client.flush(timeout=30) == 0  # metered all the same, nothing lost
        assert len(ledger.pending) == 0
        assert client.cache.stats().redis_errors >= 1  # type: ignore[union-attr]
        # The commits and their answers were done in the process instead.
        figures = ledger.memory.figures((company_id, FEATURE))
        assert figures is not None and (figures.held, figures.in_flight) == (0, 0)
        assert figures.reported == 5
    finally:
        client.close()
        redis.stop()
    assert served.usage(company_id) == 5


# --- the async client ------------------------------------------------------------------------


async def _tasks(client: AsyncChatarminOS, company_id: str, tasks: int) -> list[str]:
    keys: list[str] = []

    async def work(index: int) -> None:
        for attempt in range(1000):
            try:
                async with client.billing.reserve(
                    company_id=company_id, feature_code=FEATURE
                ) as reservation:
                    if attempt % 3 == 2:
                        raise Boom
                keys.append(reservation.idempotency_key)
            except Boom:
                continue
            except PreconditionFailedError:
                return

    async with anyio.create_task_group() as group:
        for index in range(tasks):
            group.start_soon(work, index)
    return keys


@pytest.mark.parametrize(
    ("backend", "limit", "tasks"), [("asyncio", 30, 10), ("trio", 12, 6)], ids=["asyncio", "trio"]
)
def test_async_tasks_share_the_ledger_in_redis_under_asyncio_and_in_the_process_under_trio(
    served: Served, backend: str, limit: int, tasks: int
) -> None:
    company_id = served.company(f"Async Co {backend}", limit)

    async def main() -> tuple[list[str], bool]:
        async with AsyncChatarminOS(
            api_key=KEY, base_url=served.base_url, cache=CacheOptions(redis_url=served.redis_url)
        ) as client:
            first = await client.billing.reserve(company_id=company_id, feature_code=FEATURE)
            await first.release()
            keys = await _tasks(client, company_id, tasks)
            assert await client.flush(timeout=30) == 0
            assert client.cache.stats().redis_errors == 0  # trio: not a failure, no asyncio loop
        return keys, first._in_redis

    keys, in_redis = anyio.run(main, backend=backend)
    assert in_redis == (backend == "asyncio")  # redis.asyncio needs an asyncio loop
    assert len(keys) == limit and len(set(keys)) == limit
    assert served.usage(company_id) == limit
