"""``chatarmin_os.celery``: keys that survive retries, a client per process, nothing lost.

The worker tests run real processes: a ``redis-server`` broker, ``chatarmin-os serve --db
FILE`` (what it counted is read from that file) and ``celery worker`` subprocesses of
``tests/support/celery_app.py`` (prefork with 2 children, threads, solo), stopped with
SIGTERM (a warm shutdown) mid-stream. Tasks report to the test through Redis (``BLPOP``),
so every wait is on a real event, bounded by a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.needs import require

require("celery", "celery")
require("redis", "redis")

import redis  # noqa: E402
from celery import Celery, Task  # noqa: E402

from chatarmin_os import ChatarminOS, ChatarminOSError, UsageBufferOptions  # noqa: E402
from chatarmin_os.celery import ChatarminOSCelery, NotInTaskError, task_usage_key  # noqa: E402
from chatarmin_os.local import LocalEngine  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402
from tests.support.served import KEY, Served  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
WAIT = 120.0  # the most any wait for the workers may take (they take seconds)


# -- usage_key and the client, in this process ---------------------------------------------


class Retry(Exception):
    pass


@pytest.fixture
def eager() -> Iterator[tuple[Celery, ChatarminOSCelery, LocalEngine]]:
    engine = LocalEngine()
    app = Celery("eager", broker="memory://")
    ext = ChatarminOSCelery(app, client_factory=lambda: ChatarminOS.local(engine))
    try:
        yield app, ext, engine
    finally:
        ext.close()
        engine.close()


def test_usage_key_is_the_same_on_every_retry_of_a_task(
    eager: tuple[Celery, ChatarminOSCelery, LocalEngine],
) -> None:
    app, ext, _ = eager
    seen: list[tuple[str, str, str]] = []

    @app.task(bind=True, autoretry_for=(Retry,), retry_kwargs={"countdown": 0, "max_retries": 3})
    def job(self: Task[Any, Any]) -> None:
        seen.append((self.request.id or "", ext.usage_key("a"), ext.usage_key("b")))
        if len(seen) < 3:
            raise Retry

    job.apply().get()
    assert len(seen) == 3
    assert len(set(seen)) == 1  # one task id, so the same keys each run
    task_id, key_a, key_b = seen[0]
    assert key_a == task_usage_key(task_id, "a")
    assert key_b == task_usage_key(task_id, "b")
    assert key_a != key_b  # another operation, another key

    seen.clear()
    job.apply().get()
    assert seen[0][0] != task_id
    assert seen[0][1] != key_a  # another task, another key


def test_task_usage_key_is_a_deterministic_uuid() -> None:
    key = task_usage_key("7a0a2a4e-1c1d-4c7e-9a55-3f7c2d1e0b9a", "summary")
    assert key == task_usage_key("7a0a2a4e-1c1d-4c7e-9a55-3f7c2d1e0b9a", "summary")
    # Pinned: a key that changed between SDK versions would count a retry across a deploy twice.
    assert key == "2b4da07b-7506-5600-a73e-ad00ef874ced"
    assert key[14] == "5"  # a UUIDv5
    for task_id, operation in (("", "x"), ("id", ""), ("id", "  "), (None, "x"), ("id", 3)):
        with pytest.raises(ChatarminOSError, match="must be a non-empty string"):
            task_usage_key(task_id, operation)  # type: ignore[arg-type]


def test_usage_key_outside_a_task_says_so(
    eager: tuple[Celery, ChatarminOSCelery, LocalEngine],
) -> None:
    app, ext, _ = eager
    with pytest.raises(NotInTaskError, match=r"usage_key\(\) needs a running Celery task"):
        ext.usage_key("a")

    @app.task
    def direct() -> str:
        return ext.usage_key("a")

    with pytest.raises(RuntimeError, match="needs a running Celery task"):
        direct()  # called as a function: no task id
    assert isinstance(direct.apply().get(), str)


def test_usage_counts_once_however_often_a_task_is_retried(
    eager: tuple[Celery, ChatarminOSCelery, LocalEngine],
) -> None:
    app, ext, engine = eager
    with ChatarminOS.local(engine) as admin:
        company = admin.companies.create(name="Acme")
        admin.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
        )

    @app.task(bind=True, autoretry_for=(Retry,), retry_kwargs={"countdown": 0, "max_retries": 3})
    def job(self: Task[Any, Any]) -> None:
        ext.client.billing.track_usage(
            company_id=company.id,
            feature_code="ai_credit",
            quantity=1,
            idempotency_key=ext.usage_key("meter"),
        )
        ext.client.billing.track_usage_later(
            company_id=company.id,
            feature_code="ai_credit",
            quantity=2,
            idempotency_key=ext.usage_key("meter-later"),
        )
        if self.request.retries < 2:
            raise Retry

    job.apply().get()
    job.apply().get()
    assert ext.close() == 0  # what a worker's end does: flush, then close
    events = engine.usage_events(company.id)
    assert sorted(event["quantity"] for event in events) == [1, 1, 2, 2]


def test_options_are_checked() -> None:
    app = Celery("options", broker="memory://")
    with pytest.raises(TypeError, match="either client_factory= or client options"):
        ChatarminOSCelery(app, client_factory=ChatarminOS.local, max_retries=1)
    with pytest.raises(ChatarminOSError, match="shutdown_timeout"):
        ChatarminOSCelery(app, shutdown_timeout=-1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_its_own_client_and_leaves_the_parents_open() -> None:
    engine = LocalEngine()
    made_in: list[int] = []

    def make() -> ChatarminOS:
        made_in.append(os.getpid())
        return ChatarminOS.local(engine)

    ext = ChatarminOSCelery(Celery("fork", broker="memory://"), client_factory=make)
    parent_client = ext.client
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a new client; closing it leaves the parent's alone
        code = 1
        try:
            child_client = ext.client
            ok = child_client is not parent_client and made_in == [os.getppid(), os.getpid()]
            ext.close()
            os.write(write, b"ok" if ok and ext.client is not child_client else b"no")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"ok"
    assert os.waitpid(pid, 0)[1] == 0
    assert ext.client is parent_client  # still this process's, still open
    assert parent_client.companies.create(name="still open").name == "still open"
    ext.close()


# -- real workers --------------------------------------------------------------------------


class Worker:
    """A ``celery worker`` subprocess of ``tests.support.celery_app``."""

    def __init__(self, env: dict[str, str], log: Path, pool: str, *args: str) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.support.celery_app",
                    "worker",
                    f"--pool={pool}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    *args,
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def warm_shutdown(self) -> None:
        """SIGTERM (a warm shutdown: running tasks finish) and wait for the exit."""
        self.process.send_signal(signal.SIGTERM)
        self.wait_exit()

    def wait_exit(self) -> None:
        code = self.process.wait(timeout=WAIT)
        assert code == 0, self.output()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text()[-4000:]


class Reports:
    """What tasks reported to one Redis list (``RPUSH``) and set, read as they come."""

    def __init__(self, connection: redis.Redis, name: str) -> None:
        self.redis = connection
        self.name = name
        self.lines: list[str] = []

    def wait(self, count: int, worker: Worker) -> None:
        """Until ``count`` task runs reported (a redelivered task may report twice)."""
        deadline = time.monotonic() + WAIT
        while len(self.lines) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(self.lines)} of {count} done\n{worker.output()}"
            item = self.redis.blpop([self.name], timeout=max(1, min(5, int(remaining))))
            if item is not None:
                self.lines.append(item[1].decode())
            else:
                assert worker.process.poll() is None, worker.output()

    def done(self) -> int:
        """How many different tasks reported."""
        return int(self.redis.scard(f"{self.name}-set"))

    def wait_all(self, total: int, worker: Worker) -> None:
        """Until every index below ``total`` has reported, then every line is read (all
        may have reported before this is called: a task's line and index land together)."""
        while self.done() < total:
            self.wait(len(self.lines) + 1, worker)
        while (item := self.redis.lpop(self.name)) is not None:
            self.lines.append(item.decode())

    def pids(self) -> dict[str, set[str]]:
        """The processes that ran the tasks, each with the ids of the clients it used."""
        result: dict[str, set[str]] = {}
        for line in self.lines:
            _, pid, client, _ = line.split()
            result.setdefault(pid, set()).add(client)
        return result

    def workers(self) -> dict[str, int]:
        """How many task runs each worker (by name) reported."""
        result: dict[str, int] = {}
        for line in self.lines:
            name = line.split()[3].split("@")[0]
            result[name] = result.get(name, 0) + 1
        return result


class Rig:
    """Redis, the local server and what the workers need to reach them."""

    def __init__(self, broker: RedisServer, served: Served, workdir: Path) -> None:
        self.broker = broker
        self.served = served
        self.workdir = workdir
        self.redis = redis.Redis.from_url(broker.url, socket_timeout=30)
        self.producer = Celery("producer", broker=broker.url)
        self.workers: list[Worker] = []

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in ("CHATARMIN_OS_LOG",)}
        return {
            **base,
            "CELERY_TEST_BROKER": self.broker.url,
            "OS_API_KEY": KEY,
            "CHATARMIN_OS_BASE_URL": self.served.base_url,
            **extra,
        }

    def worker(self, pool: str, name: str, *args: str, **env: str) -> Worker:
        log = self.workdir / f"{name}.log"
        worker = Worker(self.env(**env), log, pool, "-n", f"{name}@%h", *args)
        self.workers.append(worker)
        return worker

    def send(
        self, task: str, company_id: str, count: int, *, fail_every: int = 0, queue: str = "celery"
    ) -> Reports:
        """``count`` tasks; every ``fail_every``-th fails once; every other one buffers."""
        for index in range(count):
            fail_once = bool(fail_every) and index % fail_every == 0
            self.producer.send_task(
                f"tests.support.celery_app.{task}",
                args=(company_id, index, fail_once, index % 2 == 1, f"reports-{queue}"),
                queue=queue,  # a Redis list of that name: the reports go to another
            )
        return Reports(self.redis, f"reports-{queue}")

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.redis.close()
        self.producer.close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Served]]:
    workdir = tmp_path_factory.mktemp("celery")
    broker = RedisServer(workdir).start()
    db = workdir / "server.db"
    try:
        process = ServeProcess.start(["--api-key", KEY, "--db", str(db)], workdir)
        try:
            yield broker, Served(process, db)
        finally:
            process.kill()
    finally:
        broker.stop()


@pytest.fixture
def rig(services: tuple[RedisServer, Served], tmp_path: Path) -> Iterator[Rig]:
    broker, served = services
    rig = Rig(broker, served, tmp_path)
    rig.redis.flushdb()
    try:
        yield rig
    finally:
        rig.close()


def counted_once(rig: Rig, company_id: str, total: int) -> None:
    """The server counted exactly ``total`` units: one event per task, none twice."""
    counted = rig.served.counted(company_id)
    assert sum(counted.values()) == total
    assert set(counted.values()) == {1}


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="the prefork pool needs fork")

TASKS = int(os.environ.get("CELERY_TEST_TASKS", "300"))


@needs_fork
def test_prefork_autoretried_tasks_count_once_after_a_warm_shutdown(rig: Rig) -> None:
    company_id = rig.served.metered_company("Prefork")
    reports = rig.send("meter", company_id, TASKS, fail_every=2)
    worker = rig.worker("prefork", "prefork", "--concurrency=2")
    reports.wait_all(TASKS, worker)
    worker.warm_shutdown()  # half the usage is still buffered (60 s interval): flushed now

    counted_once(rig, company_id, TASKS)
    by_pid = reports.pids()
    assert len(by_pid) == 2  # two children did the work...
    assert str(worker.process.pid) not in by_pid  # ...not the main process
    assert all(len(clients) == 1 for clients in by_pid.values())  # one client each


@needs_fork
def test_acks_late_tasks_finish_in_a_new_worker_and_count_once(rig: Rig) -> None:
    company_id = rig.served.metered_company("Acks late")
    spool = str(rig.workdir / "usage-spool.db")  # one per host: both workers' children
    reports = rig.send("meter_late", company_id, TASKS)
    first = rig.worker("prefork", "first", "--concurrency=2", CELERY_TEST_SPOOL=spool)
    reports.wait(TASKS // 3, first)
    first.process.send_signal(signal.SIGTERM)  # mid-stream: the rest go back to the queue
    # The next worker starts while this one shuts down (as in a rolling deploy).
    second = rig.worker("prefork", "second", "--concurrency=2", CELERY_TEST_SPOOL=spool)
    first.wait_exit()

    reports.wait_all(TASKS, second)
    second.warm_shutdown()
    counted_once(rig, company_id, TASKS)
    reports.wait(TASKS, second)  # read every report line, not only one per task
    by_worker = reports.workers()
    assert by_worker["first"] >= TASKS // 3
    # Every task ran (a redelivered one may run twice, yet counts once: above). How many the
    # second worker ran depends on how far the first got before its warm shutdown took hold
    # (on a loaded machine it may finish all it had already received).
    assert sum(by_worker.values()) >= TASKS
    assert set(by_worker) <= {"first", "second"}


POOLS = {
    "threads": ("--concurrency=4",),
    "solo": (),
    "prefork": ("--concurrency=2", "--max-tasks-per-child=4"),
}


@needs_fork
def test_threads_and_solo_pools_and_replaced_children_lose_nothing(rig: Rig) -> None:
    """Three workers at once, each on its own queue: threads, solo, and prefork whose
    children are replaced after 4 tasks (each flushes before its exit)."""
    count = 24
    runs = {}
    for pool, args in POOLS.items():
        company_id = rig.served.metered_company(pool)
        reports = rig.send("meter", company_id, count, fail_every=3, queue=pool)
        runs[pool] = (company_id, reports, rig.worker(pool, pool, "-Q", pool, *args))
    for _, reports, worker in runs.values():
        reports.wait_all(count, worker)
    for _, _, worker in runs.values():
        worker.process.send_signal(signal.SIGTERM)
    for pool, (company_id, reports, worker) in runs.items():
        worker.wait_exit()
        counted_once(rig, company_id, count)
        by_pid = reports.pids()
        if pool == "prefork":  # children replaced after 4 tasks
            assert len(by_pid) > 2
            assert all(len(clients) == 1 for clients in by_pid.values())
        else:  # one process, one client (shared by the threads)
            assert list(by_pid) == [str(worker.process.pid)]
            assert len(by_pid[str(worker.process.pid)]) == 1


def test_usage_buffer_options_reach_the_client() -> None:
    ext = ChatarminOSCelery(
        Celery("opts", broker="memory://"),
        base_url="http://chatarmin-os.local/api/v1",
        api_key="os_sk_x",
        usage_buffer=UsageBufferOptions(flush_interval=0.5),
    )
    assert ext.client.usage_buffer.options.flush_interval == 0.5
    assert "os_sk_x" not in repr(ext)
    ext.close()


def test_importing_the_package_loads_no_celery_and_a_missing_one_names_the_extra() -> None:
    from tests.support.helpers import run_python as run

    code = "import sys, chatarmin_os, chatarmin_os.testing; print('celery' in sys.modules)"
    assert run(code) == "False"
    code = (
        "import sys; sys.modules['celery'] = None\n"
        "try:\n    import chatarmin_os.celery\n"
        "except ImportError as error:\n    print(error)\n"
    )
    assert run(code) == 'chatarmin_os.celery needs Celery: pip install "chatarmin-os[celery]"'
