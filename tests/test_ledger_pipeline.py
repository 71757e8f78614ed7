"""The Redis ledger's round trips: commits and answers wait for the next one, and are sent
pipelined with it (a real ``redis-server``; round trips counted on the connection).

While a commit waits its hold still counts, and while an answer waits its usage is still in
flight: another ledger on the same Redis sees held, then in flight, then reported. A
flushed script cache, Redis dying and a fork lose nothing and double nothing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatarmin_os import CacheOptions, ChatarminOS, UsageBufferOptions
from chatarmin_os._ledger.memory import MemoryLedger
from chatarmin_os._ledger.pipeline import PENDING_CAP, Op, Pending, connection_args
from chatarmin_os._ledger.redis_scripts import LedgerKeys
from chatarmin_os._ledger.rules import HoldVerdict, LedgerFigures
from chatarmin_os._sync._ledger import Ledger
from chatarmin_os.local import LocalEngine
from tests.support.redis_server import RedisServer

SLOT = ("comp_1", "ai_credit")


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


class Counted:
    """A Redis client whose connections count what they send (one write a round trip)."""

    def __init__(self, url: str) -> None:
        import redis

        counts = self

        class Connection(redis.Connection):
            def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counts.round_trips += 1
                super().send_packed_command(command, check_health)

        self.round_trips = 0
        self.client = redis.Redis.from_url(url, connection_class=Connection)

    def connect(self) -> Any:
        return self.client

    def evalsha_calls(self) -> int:
        stats = self.client.info("commandstats").get("cmdstat_evalsha", {})
        return int(stats.get("calls", 0))


def ledger_on(url: str, product: str, **kwargs: Any) -> tuple[Ledger, Counted]:
    counted = Counted(url)
    ledger = Ledger(
        MemoryLedger(),
        keys=LedgerKeys("test", product),
        connect=counted.connect,
        **kwargs,
    )
    return ledger, counted


def two_processes(url: str) -> tuple[Ledger, Ledger]:
    """Two ledgers of one new product on one Redis (two processes' view of it); the first
    has loaded the server's figures: a limit of 10, nothing used."""
    product = os.urandom(6).hex()
    mine, _ = ledger_on(url, product)
    theirs, _ = ledger_on(url, product)
    mine.load(SLOT, limit=10, usage=0, enabled=True)
    return mine, theirs


def test_a_commit_waits_for_the_next_round_trip_and_its_hold_counts_meanwhile(
    redis_server: RedisServer,
) -> None:
    mine, theirs = two_processes(redis_server.url)
    assert mine.hold(SLOT, "a", 2) == (HoldVerdict("held", remaining=8, limit=10), True)
    mine.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    assert len(mine.pending) == 1
    assert theirs.figures(SLOT) == LedgerFigures(10, 0, 2, 0, True)  # still held
    assert mine.hold(SLOT, "b", 1)[0] == HoldVerdict("held", remaining=7, limit=10)
    assert len(mine.pending) == 0
    assert theirs.figures(SLOT) == LedgerFigures(10, 0, 1, 2, True)  # in flight now
    mine.answered(SLOT, "key-a", ("counted", 2))
    assert theirs.figures(SLOT) == LedgerFigures(10, 0, 1, 2, True)  # the answer waits
    mine.drain()
    assert theirs.figures(SLOT) == LedgerFigures(10, 2, 1, 0, True)  # reported


def test_one_round_trip_carries_the_commit_the_answer_and_the_next_hold(
    redis_server: RedisServer,
) -> None:
    ledger, counted = ledger_on(redis_server.url, os.urandom(6).hex())
    ledger.load(SLOT, limit=10, usage=0, enabled=True)  # the scripts are loaded with it
    ledger.hold(SLOT, "a", 1)
    ledger.commit_soon(SLOT, "a", 1, "key-a", in_redis=True)
    ledger.answered(SLOT, "key-a", ("counted", 1))
    calls = counted.evalsha_calls()  # (a round trip itself)
    trips = counted.round_trips
    assert ledger.hold(SLOT, "b", 1)[0] == HoldVerdict("held", remaining=8, limit=10)
    assert counted.round_trips - trips == 1
    assert counted.evalsha_calls() - calls == 3  # COMMIT, ACKNOWLEDGE, HOLD
    assert ledger.figures(SLOT) == LedgerFigures(10, 1, 1, 0, True)


def test_flushed_scripts_are_loaded_and_only_the_refused_calls_sent_again(
    redis_server: RedisServer,
) -> None:
    ledger, counted = ledger_on(redis_server.url, os.urandom(6).hex())
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    ledger.hold(SLOT, "a", 2)
    ledger.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    counted.client.script_flush()
    calls = counted.evalsha_calls()  # (a round trip itself)
    trips = counted.round_trips
    assert ledger.hold(SLOT, "b", 3) == (HoldVerdict("held", remaining=5, limit=10), True)
    assert counted.round_trips - trips == 2  # refused NOSCRIPT, then loaded and sent again
    assert counted.evalsha_calls() - calls == 4
    assert ledger.figures(SLOT) == LedgerFigures(10, 0, 3, 2, True)  # the hold taken once


def test_ops_pending_when_redis_dies_are_done_in_the_process(
    redis_server: RedisServer,
) -> None:
    failures: list[str] = []
    ledger, _ = ledger_on(
        redis_server.url,
        os.urandom(6).hex(),
        failed=lambda what, error: failures.append(what),
    )
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    ledger.hold(SLOT, "a", 2)
    ledger.hold(SLOT, "b", 3)
    ledger.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    ledger.commit_soon(SLOT, "b", 3, "key-b", in_redis=True)
    ledger.answered(SLOT, "key-b", ("counted", 3))
    redis_server.kill()
    ledger.drain()
    assert failures == ["ledger commit"]  # one failed round trip, told once
    assert len(ledger.pending) == 0
    # Done here instead: "a" in flight, "b" answered (the process's entry never loaded).
    assert ledger.memory.figures(SLOT) == LedgerFigures(None, 3, 0, 2, False)
    ledger.answered(SLOT, "key-a", ("counted", 5))  # it flew here: answered here
    assert ledger.memory.figures(SLOT) == LedgerFigures(None, 5, 0, 0, False)


def test_the_cap_sends_what_is_pending_at_once(redis_server: RedisServer) -> None:
    ledger, counted = ledger_on(redis_server.url, os.urandom(6).hex())
    ledger.load(SLOT, limit=None, usage=0, enabled=True)
    trips = counted.round_trips
    for n in range(PENDING_CAP - 1):
        ledger.answered(SLOT, f"key-{n}", ("counted", n))
    assert counted.round_trips == trips and len(ledger.pending) == PENDING_CAP - 1
    ledger.answered(SLOT, "key-last", ("counted", PENDING_CAP))
    assert counted.round_trips == trips + 1 and len(ledger.pending) == 0
    assert ledger.figures(SLOT) == LedgerFigures(None, PENDING_CAP, 0, 0, True)


def test_calls_pending_too_long_or_too_many_are_due() -> None:
    now = [100.0]
    pending = Pending(max_age=15.0, cap=3, clock=lambda: now[0])
    assert not pending.due()
    assert pending.add(Op("commit", SLOT, [])) is False
    now[0] += 14.9
    assert not pending.due()
    now[0] += 0.1  # the oldest waited a quarter of the hold timeout
    assert pending.due()
    taken = pending.take()
    assert taken is not None and len(taken) == 1 and not pending.due()
    pending.sent()
    assert [pending.add(Op("drop", SLOT, [])) for _ in range(3)] == [False, False, True]


def test_an_answer_that_came_before_the_commit_sends_both_at_once(
    redis_server: RedisServer,
) -> None:
    ledger, theirs = two_processes(redis_server.url)
    ledger.hold(SLOT, "a", 2)
    ledger.committing("key-a")
    ledger.answered(SLOT, "key-a", ("counted", 2))  # the buffer settled its batch already
    ledger.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    assert len(ledger.pending) == 0  # no later batch would send them: sent now
    assert theirs.figures(SLOT) == LedgerFigures(10, 2, 0, 0, True)


def test_a_sender_taking_the_pending_calls_keeps_their_order(redis_server: RedisServer) -> None:
    ledger, _ = ledger_on(redis_server.url, os.urandom(6).hex())
    ledger.load(SLOT, limit=10, usage=0, enabled=True)
    ledger.hold(SLOT, "a", 2)
    ledger.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    taken = ledger.pending.take()  # another thread is sending the commit
    assert taken is not None and [op.name for op in taken] == ["commit"]
    ledger.answered(SLOT, "key-a", ("counted", 2))
    # A call now goes alone: the answer waits for the commit's round trip to end.
    assert ledger.hold(SLOT, "b", 1)[0] == HoldVerdict("held", remaining=7, limit=10)
    assert len(ledger.pending) == 1
    done = threading.Event()

    def drain() -> None:
        ledger.drain()  # waits for the sender
        done.set()

    waiter = threading.Thread(target=drain)
    waiter.start()
    assert not done.wait(0.05)
    ledger.settle(taken, [], None)  # (not sent: done in the process) ...
    ledger.pending.sent()  # ... and the sender is done
    waiter.join(timeout=10)
    assert done.is_set() and len(ledger.pending) == 0


def test_a_forked_child_leaves_the_parents_pending_calls_to_the_parent(
    redis_server: RedisServer,
) -> None:
    ledger, theirs = two_processes(redis_server.url)
    ledger.hold(SLOT, "a", 2)
    ledger.commit_soon(SLOT, "a", 2, "key-a", in_redis=True)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code, never return into pytest
        code = 1
        try:
            empty = len(ledger.pending) == 0
            ledger.hold(SLOT, "c", 1)
            ledger.drain()
            # the parent's commit was not sent: its hold is held still
            figures = ledger.figures(SLOT)
            code = 0 if (empty, figures) == (True, LedgerFigures(10, 0, 3, 0, True)) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(ledger.pending) == 1
    ledger.drain()
    assert theirs.figures(SLOT) == LedgerFigures(10, 0, 1, 2, True)


def test_the_client_sends_its_commits_when_the_buffer_settles_and_on_flush(
    redis_server: RedisServer,
) -> None:
    engine = LocalEngine()
    cache = CacheOptions(redis_url=redis_server.url)
    # The buffer sends when asked (a flush), not on its own meanwhile.
    buffering = UsageBufferOptions(flush_interval=3600)
    client = ChatarminOS.local(engine, cache=cache, usage_buffer=buffering)
    try:
        company = client.companies.create(name="Pipe Co")
        client.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=10
        )
        ledger = client._reservations().ledger
        other = Ledger(MemoryLedger(), keys=ledger._keys, connect=Counted(redis_server.url).connect)
        slot = (company.id, "ai_credit")
        with client.billing.reserve(company_id=company.id, feature_code="ai_credit", quantity=2):
            pass
        assert len(ledger.pending) == 1  # the commit
        assert other.figures(slot) == LedgerFigures(10, 0, 2, 0, True)
        # The buffer sends the event and settles its batch: the commit and its answer go.
        assert client.usage_buffer.flush(timeout=30) == 0
        assert len(ledger.pending) == 0
        assert other.figures(slot) == LedgerFigures(10, 2, 0, 0, True)
        with client.billing.reserve(company_id=company.id, feature_code="ai_credit", quantity=3):
            pass
        assert other.figures(slot) == LedgerFigures(10, 2, 3, 0, True)
        assert client.flush(timeout=30) == 0
        assert len(ledger.pending) == 0
        assert other.figures(slot) == LedgerFigures(10, 5, 0, 0, True)
        assert client.cache is not None and client.cache.stats().redis_errors == 0
    finally:
        client.close()
        engine.close()


def test_a_connection_is_asked_for_as_each_redis_py_wants() -> None:
    class Before53:  # redis-py 5.0-5.2: the command name is required
        def get_connection(self, command_name: str, *keys: Any, **options: Any) -> None: ...

    class Since53:  # later: no arguments (they warn)
        def get_connection(self, command_name: str | None = None, *keys: Any) -> None: ...

    assert connection_args(Before53()) == ("EVALSHA",)
    assert connection_args(Since53()) == ()


def test_closing_the_client_sends_its_last_events_answers_before_the_cache_closes(
    redis_server: RedisServer,
) -> None:
    engine = LocalEngine()
    cache = CacheOptions(redis_url=redis_server.url)
    buffering = UsageBufferOptions(flush_interval=3600)  # nothing sent before the close
    client = ChatarminOS.local(engine, cache=cache, usage_buffer=buffering)
    try:
        company = client.companies.create(name="Close Co")
        client.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=10
        )
        keys = client._reservations().ledger._keys
        for _ in range(3):
            with client.billing.reserve(company_id=company.id, feature_code="ai_credit"):
                pass
    finally:
        # The buffer sends the 3 events when it closes; their answers reach Redis through
        # the cache's connection, which closes after (not before) them.
        client.close()
    other = Ledger(MemoryLedger(), keys=keys, connect=Counted(redis_server.url).connect)
    try:
        assert other.figures((company.id, "ai_credit")) == LedgerFigures(10, 3, 0, 0, True)
    finally:
        engine.close()
