"""The quota ledger: the same rules in the process and in Redis, exact under concurrency.

Rules are tested against both ledgers (the memory one, and the Redis one through a real
``redis-server``) with injected clocks; exactness with real threads and real processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatarmin_os._ledger.memory import MemoryLedger
from chatarmin_os._ledger.redis_scripts import LedgerKeys
from chatarmin_os._ledger.rules import HoldVerdict, LedgerFigures
from chatarmin_os._sync._ledger import Ledger
from tests.support.redis_server import RedisServer

SLOT = ("comp_1", "ai_credit")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


def _redis_connect(url: str) -> Any:
    import redis

    client = redis.Redis.from_url(url)
    return lambda: client


def make_ledger(
    kind: str, request: pytest.FixtureRequest, clock: Clock, **timeouts: float
) -> Ledger:
    memory = MemoryLedger(clock=clock, **timeouts)
    if kind == "memory":
        return Ledger(memory)
    url = request.getfixturevalue("redis_url")
    keys = LedgerKeys("test", os.urandom(6).hex())
    return Ledger(memory, keys=keys, connect=_redis_connect(url), wall=clock)


@pytest.fixture(params=["memory", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def held(ledger: Ledger, hold_id: str, quantity: int = 1) -> tuple[HoldVerdict, bool]:
    return ledger.hold(SLOT, hold_id, quantity)


def test_nothing_is_held_before_the_servers_figures_are_loaded(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    verdict, in_redis = held(ledger, "h1")
    assert verdict == HoldVerdict("miss")
    assert in_redis is (kind == "redis")
    assert ledger.figures(SLOT) is None


def test_holds_fit_under_the_limit_and_the_next_is_refused(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    ledger.load(SLOT, limit=10, usage=3, enabled=True)
    assert held(ledger, "h1", 4)[0] == HoldVerdict("held", remaining=3, limit=10)
    assert held(ledger, "h2", 3)[0] == HoldVerdict("held", remaining=0, limit=10)
    assert held(ledger, "h3", 1)[0] == HoldVerdict("refused", remaining=0, limit=10)
    assert ledger.figures(SLOT) == LedgerFigures(10, 3, 7, 0, True)


def test_a_release_frees_the_quantity_once(kind: str, request: pytest.FixtureRequest) -> None:
    ledger = make_ledger(kind, request, Clock())
    ledger.load(SLOT, limit=2, usage=0, enabled=True)
    assert held(ledger, "a", 2)[0].outcome == "held"
    in_redis = kind == "redis"
    assert ledger.release(SLOT, "a", in_redis=in_redis) is True
    assert ledger.release(SLOT, "a", in_redis=in_redis) is False
    assert held(ledger, "b", 2)[0] == HoldVerdict("held", remaining=0, limit=2)


def test_committed_usage_is_in_flight_until_acknowledged(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 5)
    # a smaller actual amount: only that is in flight
    assert ledger.commit(SLOT, "a", 3, "key-a", in_redis=in_redis) is True
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 3, True)
    assert held(ledger, "b", 8)[0] == HoldVerdict("refused", remaining=7, limit=10)
    ledger.answered(SLOT, "key-a", ("counted", 3))
    assert ledger.figures(SLOT) == LedgerFigures(10, 3, 0, 0, True)
    # an acknowledgement never lowers what the server reported
    ledger.answered(SLOT, "key-old", ("counted", 1))
    assert ledger.figures(SLOT) == LedgerFigures(10, 3, 0, 0, True)


def test_committing_the_same_event_twice_counts_it_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 2)
    ledger.commit(SLOT, "a", 2, "same", in_redis=in_redis)
    assert ledger.commit(SLOT, "a", 2, "same", in_redis=in_redis) is False  # hold gone
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 2, True)


def test_holds_and_flights_expire(kind: str, request: pytest.FixtureRequest) -> None:
    clock = Clock()
    ledger = make_ledger(kind, request, clock, hold_timeout=60, flight_timeout=600, refresh=10_000)
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 4)
    held(ledger, "b", 3)
    ledger.commit(SLOT, "b", 3, "key-b", in_redis=in_redis)
    clock.now += 59.9
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 4, 3, True)
    clock.now += 0.2
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 3, True)
    assert held(ledger, "c", 7)[0] == HoldVerdict("held", remaining=0, limit=10)
    clock.now += 600
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 0, True)
    # a commit after its hold expired still meters (the work was done), and says so
    assert ledger.commit(SLOT, "c", 7, "key-c", in_redis=in_redis) is False
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 7, True)


def test_thousands_in_flight_expire_in_order_and_their_sums_stay_exact() -> None:
    """The in-process ledger keeps running sums and purges only the expired front (a hold
    looks at no more than what expired): exact through adds, repeats, acks and expiry."""
    clock = Clock()
    memory = MemoryLedger(clock=clock, hold_timeout=60, flight_timeout=600, refresh=10**9)
    memory.load(SLOT, limit=100_000, usage=0, enabled=True)
    for n in range(5_000):  # one a millisecond: the buffer has sent none of them yet
        assert memory.hold(SLOT, f"h{n}", 2).outcome == "held"
        memory.commit(SLOT, f"h{n}", 2, f"k{n}")
        clock.now += 0.001
    assert memory.figures(SLOT) == LedgerFigures(100_000, 0, 0, 10_000, True)
    memory.acknowledge(SLOT, "k10", 2)  # counted by the server: reported, no longer flying
    memory.commit(SLOT, "gone", 2, "k20")  # the same event again: counted once, renewed
    assert memory.figures(SLOT) == LedgerFigures(100_000, 2, 0, 9_998, True)
    clock.now += 600 - 5 + 0.0105  # the first ten flights' time is up (k10 left already)
    assert memory.figures(SLOT) == LedgerFigures(100_000, 2, 0, 9_978, True)
    assert memory.hold(SLOT, "x", 4) == HoldVerdict(
        "held", remaining=100_000 - 2 - 9_978 - 4, limit=100_000
    )
    clock.now += 10  # every flight's time is up, k20's renewed one too; the hold is live
    assert memory.figures(SLOT) == LedgerFigures(100_000, 2, 4, 0, True)


def test_old_figures_are_asked_for_again(kind: str, request: pytest.FixtureRequest) -> None:
    clock = Clock()
    ledger = make_ledger(kind, request, clock, refresh=300)
    ledger.load(SLOT, limit=10, usage=2, enabled=True)
    clock.now += 299
    assert held(ledger, "a")[0].outcome == "held"
    clock.now += 1
    assert held(ledger, "b")[0] == HoldVerdict("miss")
    # reloaded figures replace the old usage; the live hold still counts
    ledger.load(SLOT, limit=10, usage=5, enabled=True)
    assert held(ledger, "c", 4)[0] == HoldVerdict("held", remaining=0, limit=10)


def test_a_live_entry_keeps_the_higher_usage(kind: str, request: pytest.FixtureRequest) -> None:
    ledger = make_ledger(kind, request, Clock())
    ledger.load(SLOT, limit=10, usage=6, enabled=True)
    ledger.load(SLOT, limit=10, usage=4, enabled=True)  # a slower check that started earlier
    assert ledger.figures(SLOT) == LedgerFigures(10, 6, 0, 0, True)


def test_a_refused_event_makes_the_entry_ask_again(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 2)
    ledger.commit(SLOT, "a", 2, "key-a", in_redis=in_redis)
    ledger.answered(SLOT, "key-a", ("refused", None))
    assert held(ledger, "b")[0] == HoldVerdict("miss")
    ledger.load(SLOT, limit=10, usage=10, enabled=True)
    figures = ledger.figures(SLOT)
    assert figures == LedgerFigures(10, 10, 0, 0, True)


def test_a_dropped_event_is_no_longer_in_flight(kind: str, request: pytest.FixtureRequest) -> None:
    ledger = make_ledger(kind, request, Clock())
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 2)
    ledger.commit(SLOT, "a", 2, "key-a", in_redis=in_redis)
    ledger.answered(SLOT, "key-a", ("dropped", None))
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 0, 0, True)


def test_disabled_and_unlimited_features_hold_nothing(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    ledger.load(SLOT, limit=None, usage=50, enabled=True)
    assert held(ledger, "a", 10**6)[0] == HoldVerdict("unlimited")
    ledger.load(("comp_1", "sso"), limit=5, usage=0, enabled=False)
    assert ledger.hold(("comp_1", "sso"), "b", 1)[0] == HoldVerdict("disabled")
    assert ledger.figures(SLOT) == LedgerFigures(None, 50, 0, 0, True)


def test_redis_failing_falls_back_to_the_process() -> None:
    failures: list[str] = []

    def broken() -> Any:
        class Pool:
            def get_connection(self) -> Any:
                raise ConnectionError("down")

        class Down:
            connection_pool = Pool()

        return Down()

    ledger = Ledger(
        MemoryLedger(),
        keys=LedgerKeys("test", "p"),
        connect=broken,
        failed=lambda what, error: failures.append(f"{what}: {error}"),
    )
    ledger.load(SLOT, limit=1, usage=0, enabled=True)
    assert ledger.hold(SLOT, "a", 1) == (HoldVerdict("held", remaining=0, limit=1), False)
    assert ledger.hold(SLOT, "b", 1) == (HoldVerdict("refused", remaining=0, limit=1), False)
    assert failures == ["ledger load: down", "ledger hold: down", "ledger hold: down"]


def _hammer(ledger: Ledger, threads: int, holds: int) -> int:
    """``threads`` threads each trying ``holds`` holds of 1; every third is released, the
    rest committed. Returns how many were committed."""
    committed = [0] * threads

    def work(index: int) -> None:
        for n in range(holds):
            hold_id = f"{os.getpid()}-{index}-{n}"
            verdict, in_redis = ledger.hold(SLOT, hold_id, 1)
            if verdict.outcome != "held":
                assert verdict.outcome == "refused", verdict
                continue
            if n % 3 == 2:
                assert ledger.release(SLOT, hold_id, in_redis=in_redis)
            else:
                assert ledger.commit(SLOT, hold_id, 1, f"key-{hold_id}", in_redis=in_redis)
                committed[index] += 1

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(committed)


def test_threads_never_commit_more_than_the_limit_in_the_process() -> None:
    ledger = Ledger(MemoryLedger())
    ledger.load(SLOT, limit=50, usage=0, enabled=True)
    assert _hammer(ledger, threads=8, holds=40) == 50
    assert ledger.figures(SLOT) == LedgerFigures(50, 0, 0, 50, True)


_WORKER = """
import sys
from chatarmin_os._ledger.memory import MemoryLedger
from chatarmin_os._ledger.redis_scripts import LedgerKeys
from chatarmin_os._sync._ledger import Ledger
from tests.test_ledger import SLOT, _hammer, _redis_connect

url, product, mode = sys.argv[1], sys.argv[2], sys.argv[3]
ledger = Ledger(MemoryLedger(), keys=LedgerKeys("test", product), connect=_redis_connect(url))
if mode == "hold":
    verdict, in_redis = ledger.hold(SLOT, "crashing", 5)
    assert verdict.outcome == "held" and in_redis, verdict
    print("held", flush=True)
    sys.stdin.read()  # until killed
else:
    ledger.load(SLOT, limit=100, usage=0, enabled=True)
    print(_hammer(ledger, threads=6, holds=40), flush=True)
"""


def _worker(url: str, product: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, product, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_processes_sharing_redis_never_commit_more_than_the_limit(redis_url: str) -> None:
    product = os.urandom(6).hex()
    workers = [_worker(redis_url, product, "hammer") for _ in range(3)]
    totals = []
    for worker in workers:
        out, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0
        totals.append(int(out))
    assert sum(totals) == 100
    ledger = Ledger(
        MemoryLedger(), keys=LedgerKeys("test", product), connect=_redis_connect(redis_url)
    )
    assert ledger.figures(SLOT) == LedgerFigures(100, 0, 0, 100, True)


def test_a_killed_process_frees_its_hold_when_it_expires(redis_url: str) -> None:
    product = os.urandom(6).hex()
    clock = Clock()
    clock.now = time.time()
    ledger = Ledger(
        MemoryLedger(hold_timeout=60),
        keys=LedgerKeys("test", product),
        connect=_redis_connect(redis_url),
        wall=clock,
    )
    ledger.load(SLOT, limit=5, usage=0, enabled=True)
    worker = _worker(redis_url, product, "hold")
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "held"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    clock.now = time.time()  # after the worker's hold was taken
    assert ledger.hold(SLOT, "mine", 1)[0] == HoldVerdict("refused", remaining=0, limit=5)
    clock.now += 60.001  # the killed worker's hold timeout (the default) has passed
    assert ledger.hold(SLOT, "mine", 1)[0] == HoldVerdict("held", remaining=4, limit=5)


def test_an_answer_before_the_commit_lands_is_kept_for_it(
    kind: str, request: pytest.FixtureRequest
) -> None:
    ledger = make_ledger(kind, request, Clock())
    in_redis = kind == "redis"
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    held(ledger, "a", 2)
    ledger.committing("key-a")
    ledger.answered(SLOT, "key-a", ("counted", 2))  # the buffer's worker was quicker
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 2, 0, True)
    ledger.commit(SLOT, "a", 2, "key-a", in_redis=in_redis)
    assert ledger.figures(SLOT) == LedgerFigures(10, 2, 0, 0, True)
