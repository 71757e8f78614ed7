"""The entitlement cache under concurrency: single flight (threads in the blocking client,
tasks in the async one), the background refresh after an outage, and fork.

Waits are on real signals with deadlines (a counter reaching a value, a thread or process
ending), never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import trio

from chatarmin_os import AsyncChatarminOS, ChatarminOS, NotFoundError
from tests.support.cache_harness import (
    DEADLINE,
    Clock,
    Recorder,
    async_client,
    sync_client,
    wait_until,
)

AI = "ai_credit"
N = 20


async def await_until(condition: Callable[[], bool], what: str) -> None:
    """The async twin of :func:`wait_until`: yields to the other tasks between checks."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0)


# -- single flight -------------------------------------------------------------------------


def test_concurrent_misses_in_threads_make_one_request() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    holder: dict[str, ChatarminOS] = {}

    def held_until_all_wait(request: httpx.Request) -> httpx.Response:
        cache = holder["client"].cache
        assert cache is not None
        wait_until(lambda: cache.stats().coalesced == N - 1, "the other threads to wait")
        return server(request)

    with sync_client(held_until_all_wait, clock) as client:
        holder["client"] = client
        with ThreadPoolExecutor(N) as pool:
            answers = list(
                pool.map(
                    lambda _: client.features.check(company_id=company_id, feature_code=AI),
                    range(N),
                )
            )
        stats = client.cache.stats()  # type: ignore[union-attr]
    assert server.take() == ["features.check"]
    assert [a.remaining for a in answers] == [100] * N
    # Every caller got the server's answer of just now: "live" (one frozen object).
    assert {a.source for a in answers} == {"live"} and len({id(a) for a in answers}) == 1
    assert (stats.misses, stats.coalesced, stats.entries) == (N, N - 1, 1)


def test_concurrent_misses_share_the_error_too() -> None:
    server, clock = Recorder(), Clock()
    holder: dict[str, ChatarminOS] = {}

    def held_until_all_wait(request: httpx.Request) -> httpx.Response:
        cache = holder["client"].cache
        assert cache is not None
        wait_until(lambda: cache.stats().coalesced == N - 1, "the other threads to wait")
        return server(request)

    def check(_: int) -> str:
        try:
            holder["client"].features.check(company_id="no-such-company", feature_code=AI)
        except NotFoundError as error:
            return error.code or ""
        return "answered"

    with sync_client(held_until_all_wait, clock) as client:
        holder["client"] = client
        with ThreadPoolExecutor(N) as pool:
            outcomes = list(pool.map(check, range(N)))
    assert outcomes == ["NOT_FOUND"] * N
    assert server.take() == ["features.check"]


async def test_concurrent_misses_in_tasks_make_one_request() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    holder: dict[str, AsyncChatarminOS] = {}
    waiting = [N - 1]  # how many callers must be waiting before the server answers

    async def held_until_all_wait(request: httpx.Request) -> httpx.Response:
        cache = holder["client"].cache
        assert cache is not None
        await await_until(lambda: cache.stats().coalesced >= waiting[0], "the other tasks")
        return server(request)

    async with async_client(held_until_all_wait, clock) as client:
        holder["client"] = client
        answers = await asyncio.gather(
            *(client.features.check(company_id=company_id, feature_code=AI) for _ in range(N))
        )
        waiting[0] += N - 1
        by_org = await asyncio.gather(
            *(client.features.check_by_external_org_id("org_1", "sso") for _ in range(N)),
        )
    assert [a.remaining for a in answers] == [100] * N
    assert [a.is_enabled for a in by_org] == [False] * N
    calls = server.take()
    assert calls[0] == "features.check"
    assert sorted(calls[1:]) == ["companies.getByProductLink", "features.checkByExternalOrgId"]


async def test_a_cancelled_load_lets_the_waiters_load_again() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    release = asyncio.Event()
    first = True

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        if first:
            first = False
            await release.wait()  # held until cancelled
        return server(request)

    async with async_client(handler, clock) as client:
        owner = asyncio.ensure_future(client.features.check(company_id=company_id, feature_code=AI))
        await await_until(lambda: server.calls == [] and not first, "the first request")
        waiter = asyncio.ensure_future(
            client.features.check(company_id=company_id, feature_code=AI)
        )
        await await_until(lambda: client.cache.stats().coalesced == 1, "the waiter")  # type: ignore[union-attr]
        owner.cancel()
        access = await waiter
    assert owner.cancelled()
    assert (access.source, access.remaining) == ("live", 100)
    assert server.take() == ["features.check"]


def test_single_flight_under_trio() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()

    async def main() -> list[int | None]:
        results: list[int | None] = []
        async with async_client(server, clock) as client:

            async def check() -> None:
                access = await client.features.check(company_id=company_id, feature_code=AI)
                results.append(access.remaining)

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(check)
        return results

    assert trio.run(main) == [100] * 5
    assert server.take() == ["features.check"]


# -- the background refresh after an outage ------------------------------------------------


def test_a_background_thread_refreshes_once_the_server_answers_again() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    with sync_client(server, clock) as client:
        cache = client.cache
        assert cache is not None
        client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        server.take()
        clock.advance(0.5)  # before the first retry (1 s after the failure): no request
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        assert server.take() == []
        clock.advance(0.6)  # the retry is due: a background request; the caller gets stale
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        wait_until(lambda: not cache._outage.probing, "the background request")
        assert server.take() == ["features.check"]  # failed: the next try in 2 s
        server.failure = None
        server.call(
            "features.setAccess", {"companyId": company_id, "featureCode": AI, "quantityLimit": 9}
        )
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        assert server.take() == []
        clock.advance(2.1)
        assert client.features.check(company_id=company_id, feature_code=AI).source == "stale"
        wait_until(lambda: cache.stats().refreshes == 1, "the refresh")
        access = client.features.check(company_id=company_id, feature_code=AI)
    assert (access.source, access.quantity_limit) == ("cache", 9)  # refreshed in the background
    assert server.take() == ["features.check"]
    assert not cache._outage.active


async def test_a_background_task_refreshes_once_the_server_answers_again() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    async with async_client(server, clock, fallback={"sso": "closed"}) as client:
        cache = client.cache
        assert cache is not None
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = trpc_503()
        assert (
            await client.features.check(company_id=company_id, feature_code=AI)
        ).source == "stale"
        fallback = await client.features.check(company_id=company_id, feature_code="sso")
        assert fallback.source == "fallback"
        server.failure = None
        server.take()
        clock.advance(1.1)
        # The retry is due: this caller gets the fallback now, a task asks in the background.
        assert (
            await client.features.check(company_id=company_id, feature_code="sso")
        ).source == "fallback"
        await await_until(lambda: cache.stats().refreshes == 1, "the refresh")
        sso = await client.features.check(company_id=company_id, feature_code="sso")
        ai = await client.features.check(company_id=company_id, feature_code=AI)
    assert server.take() == ["features.check", "features.check"]  # sso refreshed; ai asked
    assert (sso.source, sso.is_enabled) == ("cache", False)
    assert ai.source == "live"  # the outage is over: expired entries are asked for again


def test_under_trio_without_async_with_the_caller_asks_itself() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()

    async def main() -> list[str]:
        client = async_client(server, clock)
        await client.features.check(company_id=company_id, feature_code=AI)
        clock.advance(60)
        server.failure = httpx.ConnectError("refused")
        sources = [(await client.features.check(company_id=company_id, feature_code=AI)).source]
        server.failure = None
        clock.advance(1.1)  # no nursery for a background refresh: this caller asks
        sources.append((await client.features.check(company_id=company_id, feature_code=AI)).source)
        await client.aclose()
        return sources

    assert trio.run(main) == ["stale", "live"]


def trpc_503() -> httpx.Response:
    from tests.support.helpers import trpc_error

    return trpc_error("SERVICE_UNAVAILABLE", 503)


# -- fork ----------------------------------------------------------------------------------


def _in_child(check: Callable[[], bool]) -> int:
    """Run ``check`` in a forked child; its exit code (0 when it returned True)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            code = 0 if check() else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_starts_with_an_empty_cache() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    with sync_client(server, clock) as client:
        client.features.check(company_id=company_id, feature_code=AI)
        client.companies.get_by_product_link(external_org_id="org_1")
        parent = client.cache
        assert parent is not None and parent.stats().entries == 2
        server.take()

        def child() -> bool:
            stats = parent.stats()
            if (stats.entries, stats.hits, stats.misses) != (0, 0, 0):
                return False
            access = client.features.check(company_id=company_id, feature_code=AI)
            return access.source == "live" and server.calls == ["features.check"]

        assert _in_child(child) == 0
        assert parent.stats().entries == 2  # the parent's cache is untouched
        assert client.features.check(company_id=company_id, feature_code=AI).source == "cache"
    assert server.take() == []


async def test_a_forked_child_of_an_async_client_starts_empty() -> None:
    server, clock = Recorder(), Clock()
    company_id = server.company()
    async with async_client(server, clock) as client:
        await client.features.check(company_id=company_id, feature_code=AI)
        cache = client.cache
        assert cache is not None

        def child() -> bool:
            return cache.stats().entries == 0 and not cache._flights and not cache._entries

        assert _in_child(child) == 0
        assert cache.stats().entries == 1
