"""The cache's shared level in a real Redis: entries shared between clients and processes,
invalidations and usage reaching the others through pub/sub, Redis going away mid-run, the
key layout, fork. (How fast a change propagates is measured in benchmarks/bench_cache.py.)

Each test gets its own ``redis-server`` on a free port (``tests/support/redis_server.py``); without
one these tests are skipped with the reason, except in CI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatarmin_os import (
    AsyncChatarminOS,
    CacheOptions,
    ChatarminOS,
    ConfigurationError,
)
from chatarmin_os.local.engine import DEFAULT_API_KEY
from chatarmin_os.testing import ChatarminOSServer
from tests.support.cache_harness import (
    DEADLINE,
    Clock,
    Recorder,
    async_client,
    sync_client,
    wait_until,
)
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
AI = "ai_credit"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def invalidations(client: ChatarminOS | AsyncChatarminOS) -> int:
    assert client.cache is not None
    return client.cache.stats().invalidations


# -- one process, two caches ---------------------------------------------------------------


def test_a_second_cache_is_answered_by_redis(redis_server: RedisServer) -> None:
    server = Recorder()
    company_id = server.company()
    with (
        sync_client(server, redis_url=redis_server.url) as a,
        sync_client(server, redis_url=redis_server.url) as b,
    ):
        assert a.features.check(company_id=company_id, feature_code=AI).source == "live"
        assert a.companies.get_by_product_link(external_org_id="org_1") is not None
        assert server.take() == ["features.check", "companies.getByProductLink"]
        access = b.features.check(company_id=company_id, feature_code=AI)
        company = b.companies.get_by_product_link(external_org_id="org_1")
        by_org = b.features.check_by_external_org_id("org_1", AI)
        assert server.take() == []  # all from Redis
        assert (access.source, access.remaining) == ("cache", 100)
        assert company is not None and company.id == company_id
        assert by_org.source == "cache"
        assert b.cache is not None and b.cache.stats().redis_hits == 2


def test_a_check_by_org_is_answered_by_redis_in_a_fresh_process(
    redis_server: RedisServer,
) -> None:
    server = Recorder()
    company_id = server.company()
    with (
        sync_client(server, redis_url=redis_server.url) as a,
        sync_client(server, redis_url=redis_server.url) as b,
    ):
        a.companies.get_by_product_link(external_org_id="org_1")
        a.features.check(company_id=company_id, feature_code=AI)
        server.take()
        access = b.features.check_by_external_org_id("org_1", AI)
        assert (access.source, access.remaining) == ("cache", 100)
        assert server.take() == []  # the org's company and the check, both from Redis
        assert b.cache is not None and b.cache.stats().redis_hits == 2


def test_invalidations_and_usage_reach_the_other_cache(redis_server: RedisServer) -> None:
    server = Recorder()
    company_id = server.company()
    with (
        sync_client(server, redis_url=redis_server.url) as a,
        sync_client(server, redis_url=redis_server.url) as b,
    ):
        a.features.check(company_id=company_id, feature_code=AI)
        b.features.check(company_id=company_id, feature_code=AI)
        b.features.list_access(company_id)
        server.take()

        a.billing.track_usage(company_id=company_id, feature_code=AI, quantity=30)
        wait_until(lambda: invalidations(b) == 1, "the usage message")
        access = b.features.check(company_id=company_id, feature_code=AI)
        [listed] = [f for f in b.features.list_access(company_id) if f.feature_code == AI]
        assert server.take() == ["billing.trackUsage"]  # b read Redis: the usage overlay
        assert (access.source, access.remaining, access.current_usage) == ("cache", 70, 30)
        assert (listed.provenance, listed.remaining) == ("cache", 70)

        b.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=500)
        wait_until(lambda: invalidations(a) == 1, "the invalidation")
        server.take()
        access = a.features.check(company_id=company_id, feature_code=AI)
        assert (access.source, access.quantity_limit) == ("live", 500)
        assert server.take() == ["features.check"]


def test_a_load_that_raced_an_invalidation_is_not_written(redis_server: RedisServer) -> None:
    import redis

    server = Recorder()
    company_id = server.company()
    with (
        sync_client(server, redis_url=redis_server.url) as a,
        sync_client(server, redis_url=redis_server.url) as b,
    ):
        assert a.cache is not None and a.cache._redis is not None
        level = a.cache._redis
        key = ("c", company_id, AI)
        generation = level.generation(key, None)  # a load begins ...
        b.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=5)
        access = a.features.check(company_id=company_id, feature_code=AI)
        level.write(key, access, company_id, generation or "")  # ... and ends: refused
        raw = redis.Redis.from_url(redis_server.url)
        bucket = level.keys.company(company_id)
        assert raw.hget(bucket, f"chk:{AI}") is not None  # a's own (later) load wrote it
        raw.hdel(bucket, f"chk:{AI}")
        level.write(key, access, company_id, generation or "")
        assert raw.hget(bucket, f"chk:{AI}") is None  # the stale generation is refused
        raw.close()


def test_keys_are_versioned_per_product_expire_and_never_hold_the_key(
    redis_server: RedisServer,
) -> None:
    import redis

    server = Recorder()
    company_id = server.company()
    with sync_client(server, redis_url=redis_server.url, max_stale=60) as client:
        client.features.check(company_id=company_id, feature_code=AI)
        client.companies.get_by_product_link(external_org_id="org_1")
        client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=1)
        raw = redis.Redis.from_url(redis_server.url)
        keys = sorted(k.decode() for k in raw.keys("*"))
        assert client.cache is not None
        product = client.cache._product
        assert keys == [
            f"chatarmin_os:cache:1:{product}:c:{company_id}",
            f"chatarmin_os:cache:1:{product}:o:org_1",
        ]
        assert not any(DEFAULT_API_KEY in key for key in keys)
        for key in keys:
            assert 60_000 < raw.pttl(key) <= 62_000  # max(ttl, max_stale) + 1 s
        fields = raw.hgetall(keys[0])
        assert sorted(fields) == [f"chk:{AI}".encode(), f"use:{AI}".encode()]
        assert fields[f"use:{AI}".encode()].startswith(b"1|")
        client.links.reset()  # every org hash of the product goes
        assert sorted(k.decode() for k in raw.keys("*")) == [keys[0]]
        raw.close()


def test_clear_drops_the_products_keys_everywhere(redis_server: RedisServer) -> None:
    import redis

    server = Recorder()
    company_id = server.company()
    with (
        sync_client(server, redis_url=redis_server.url) as a,
        sync_client(server, redis_url=redis_server.url) as b,
    ):
        b.features.check(company_id=company_id, feature_code=AI)
        a.features.check(company_id=company_id, feature_code=AI)
        assert a.cache is not None and b.cache is not None
        a.cache.clear()
        wait_until(lambda: b.cache.stats().entries == 0, "the clear message")  # type: ignore[union-attr]
        raw = redis.Redis.from_url(redis_server.url)
        assert raw.keys("*") == []
        raw.close()
        server.take()
        assert b.features.check(company_id=company_id, feature_code=AI).source == "live"
        assert server.take() == ["features.check"]


# -- Redis going away ----------------------------------------------------------------------


def test_redis_dying_mid_run_degrades_to_this_process(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    with sync_client(server, clock, redis_url=redis_server.url) as client:
        cache = client.cache
        assert cache is not None
        client.features.check(company_id=company_id, feature_code=AI)
        redis_server.kill()
        clock.advance(2)  # past the in-process TTL in front of Redis (1 s)
        server.take()
        with caplog.at_level(logging.DEBUG, logger="chatarmin_os"):
            access = client.features.check(company_id=company_id, feature_code=AI)
            assert access.source == "live"
            assert client.features.check(company_id=company_id, feature_code=AI).source == "cache"
            client.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=50)
            client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=1)
            after = client.features.check(company_id=company_id, feature_code=AI)
        assert (after.source, after.remaining) == ("live", 49)
        stats = cache.stats()
        assert stats.redis_errors >= 1
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert [r.getMessage().split(" (")[0] for r in warnings] == [
            f"cache: Redis at redis://127.0.0.1:{redis_server.port} unreachable"
        ]
        # Back up: after the back-off, Redis is used again.
        redis_server.start()
        clock.advance(60)
        server.take()
        with caplog.at_level(logging.INFO, logger="chatarmin_os"):
            assert client.features.check(company_id=company_id, feature_code=AI).source == "live"
            client.features.check(company_id=company_id, feature_code="team_seats")
        assert cache._redis is not None and cache._redis.available()


def test_an_unreachable_redis_from_the_start_never_raises() -> None:
    from tests.support.redis_server import free_port

    server, clock = Recorder(), Clock()
    company_id = server.company()
    with sync_client(server, clock, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        assert client.features.check(company_id=company_id, feature_code=AI).source == "live"
        assert client.features.check(company_id=company_id, feature_code=AI).source == "cache"
        client.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=5)
        client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=1)
        assert client.cache is not None
        assert client.cache.stats().redis_errors >= 1
    assert server.take() == ["features.check", "features.setAccess", "billing.trackUsage"]


def test_redis_url_without_the_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigurationError, match=r"pip install \"chatarmin-os\[redis\]\""):
        ChatarminOS(api_key="os_sk_x", cache=CacheOptions(redis_url="redis://localhost:6379"))


# -- the async client ----------------------------------------------------------------------


async def test_the_async_client_shares_and_listens_under_asyncio(
    redis_server: RedisServer,
) -> None:
    server = Recorder()
    company_id = server.company()
    client = async_client(server, redis_url=redis_server.url)
    with sync_client(server, redis_url=redis_server.url) as other:
        async with client:
            other.features.check(company_id=company_id, feature_code=AI)
            server.take()
            access = await client.features.check(company_id=company_id, feature_code=AI)
            assert (access.source, server.take()) == ("cache", [])  # from Redis
            await client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=3)
            wait_until(lambda: invalidations(other) == 1, "the usage message")
            assert other.features.check(company_id=company_id, feature_code=AI).remaining == 97
            other.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=7)
            started = time.monotonic()
            while invalidations(client) == 0:
                assert time.monotonic() - started < DEADLINE
                await asyncio.sleep(0.001)  # let the listener task run
            access = await client.features.check(company_id=company_id, feature_code=AI)
            assert (access.source, access.quantity_limit) == ("live", 7)
        assert client.cache is not None and client.cache._redis is not None
        assert client.cache._redis._client is None  # closed with the client


# -- fork ----------------------------------------------------------------------------------


def test_a_forked_child_has_none_of_its_parents_redis(redis_server: RedisServer) -> None:
    server = Recorder()
    company_id = server.company()
    with sync_client(server, redis_url=redis_server.url) as client:
        client.features.check(company_id=company_id, feature_code=AI)
        cache = client.cache
        assert cache is not None and cache._redis is not None
        level = cache._redis
        wait_until(lambda: level._listener is not None and level._listener.alive(), "the listener")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            ok = level._client is None and level._listener is None and cache.stats().entries == 0
            access = client.features.check(company_id=company_id, feature_code=AI)
            ok = ok and access.source == "cache" and cache.stats().redis_hits == 1
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert level._listener is not None and level._listener.alive()


# -- two processes -------------------------------------------------------------------------


class Peer:
    """``tests/support/cache_peer.py`` in a subprocess, sharing the server and Redis."""

    def __init__(self, base_url: str, api_key: str, redis_url: str) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CHATARMIN_OS_LOG"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.cache_peer", base_url, api_key, redis_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.ask(None) == {"ready": True}

    def ask(self, command: str | None) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the peer exited with {self.process.poll()}"
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()  # the peer's loop ends: it closes its client
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_two_processes_see_each_others_writes(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A write drops the entries here (a log line, just before the Redis commands and the
    publish) and the other process drops its copies (its log line), both ways."""

    def dropped_here() -> None:
        messages = [r.getMessage() for r in caplog.records]
        own = [m for m in messages if m.startswith(("cache: dropped", "cache: usage"))]
        assert len(own) == 1, messages
        caplog.clear()

    with ChatarminOSServer() as http, caplog.at_level(logging.DEBUG, logger="chatarmin_os"):
        company_id = http.add_company("Acme", external_org_id="org_1", tier="free")
        peer = Peer(http.base_url, http.api_key, redis_server.url)
        client = ChatarminOS(
            api_key=http.api_key,
            base_url=http.base_url,
            max_retries=0,
            cache=CacheOptions(redis_url=redis_server.url),
        )
        try:
            assert client.features.check(company_id=company_id, feature_code=AI).source == "live"
            assert peer.ask(f"check {company_id} {AI}") == {
                "source": "cache",
                "remaining": 100,
                "limit": 100,
            }

            # Our write reaches the peer.
            caplog.clear()
            client.features.set_access(company_id=company_id, feature_code=AI, quantity_limit=40)
            dropped_here()
            assert peer.ask("wait_dropped 1")["at"] is not None  # None: not within its 10 s
            assert peer.ask(f"check {company_id} {AI}") == {
                "source": "live",
                "remaining": 40,
                "limit": 40,
            }

            # Usage tracked here is exact there, without asking the server.
            client.billing.track_usage(company_id=company_id, feature_code=AI, quantity=15)
            dropped_here()
            assert peer.ask("wait_dropped 2")["at"] is not None
            assert peer.ask(f"check {company_id} {AI}") == {
                "source": "cache",
                "remaining": 25,
                "limit": 40,
            }

            # The peer's write reaches us.
            client.features.check(company_id=company_id, feature_code=AI)
            seen = invalidations(client)
            peer.ask(f"set_limit {company_id} {AI} 60")
            wait_until(lambda: invalidations(client) > seen, "the peer's invalidation")
            messages = [r.getMessage() for r in caplog.records]
            changed = [m for m in messages if m.startswith("cache: another process changed")]
            assert len(changed) == 1, messages
            access = client.features.check(company_id=company_id, feature_code=AI)
            assert (access.source, access.quantity_limit, access.remaining) == ("live", 60, 45)
        finally:
            client.close()
            peer.close()
