"""Our own pool: ten smaller pools, 100 connections all kept alive between bursts.

The routing is tested with recording shards (both twins: tasks, then threads); the pool as a
whole against a small aiohttp server that tells which connection carried each request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from chatarmin_os import AsyncChatarminOS
from chatarmin_os._async._http import (
    KEEPALIVE_EXPIRY,
    MAX_CONNECTIONS,
    SHARDS,
    AsyncShardedTransport,
    default_async_client,
)
from chatarmin_os._client import library
from chatarmin_os._sync._http import ShardedTransport, default_sync_client
from tests.support.aiohttp_server import serving
from tests.support.canned import UNMETERED_ACCESS_ANSWER

KEY = "os_sk_shards"


class HeldShard:
    """A shard answering each request once the test lets it go (async)."""

    def __init__(
        self, number: int, log: list[int], gate: asyncio.Event, arrived: asyncio.Event
    ) -> None:
        self.number, self.log, self.gate, self.arrived = number, log, gate, arrived
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.log.append(self.number)
        self.arrived.set()
        await self.gate.wait()
        if request.url.path == "/fail":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, request=request)

    async def aclose(self) -> None:
        self.closed = True


async def test_requests_go_to_the_least_busy_shard_and_one_at_a_time_to_the_first() -> None:
    log: list[int] = []
    gate, arrived = asyncio.Event(), asyncio.Event()
    shards = [HeldShard(n, log, gate, arrived) for n in range(3)]
    transport = AsyncShardedTransport(shards)
    request = httpx.Request("GET", "http://x/ok")
    gate.set()
    for _ in range(3):  # one at a time: always the first (one connection, as one pool)
        await transport.handle_async_request(request)
    assert log == [0, 0, 0]
    log.clear()
    gate.clear()
    waiting = [asyncio.ensure_future(transport.handle_async_request(request)) for _ in range(7)]
    while len(log) < 7:  # until all seven are in their shards
        await arrived.wait()
        arrived.clear()
    assert log == [0, 1, 2, 0, 1, 2, 0]
    assert transport._busy == [3, 2, 2]
    gate.set()
    answers = await asyncio.gather(*waiting)
    assert [answer.status_code for answer in answers] == [200] * 7
    assert transport._busy == [0, 0, 0]


async def test_a_failed_request_frees_its_shard_and_close_closes_every_shard() -> None:
    gate = asyncio.Event()
    gate.set()
    shards = [HeldShard(n, [], gate, asyncio.Event()) for n in range(2)]
    transport = AsyncShardedTransport(shards)
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(httpx.Request("GET", "http://x/fail"))
    assert transport._busy == [0, 0]
    await transport.aclose()
    assert [shard.closed for shard in shards] == [True, True]


def test_threads_are_routed_the_same_way() -> None:
    log: list[int] = []
    gate = threading.Event()
    entered = threading.Semaphore(0)

    class Shard:
        def __init__(self, number: int) -> None:
            self.number = number

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            log.append(self.number)
            entered.release()
            gate.wait(10)
            return httpx.Response(200, request=request)

    transport = ShardedTransport([Shard(0), Shard(1)])
    request = httpx.Request("GET", "http://x/ok")
    threads = [threading.Thread(target=transport.handle_request, args=(request,)) for _ in range(4)]
    for thread in threads:
        thread.start()
        assert entered.acquire(timeout=10)  # each is in its shard before the next starts
    assert log == [0, 1, 0, 1]
    gate.set()
    for thread in threads:
        thread.join(10)
    assert transport._busy == [0, 0]


def test_limits_are_shared_between_the_shards() -> None:
    limits = httpx.Limits(max_connections=25, max_keepalive_connections=None)
    transport = AsyncShardedTransport.of(
        httpx, verify=httpx.create_ssl_context(), limits=limits, shards=4
    )
    pools = [shard._pool for shard in transport._shards]
    assert [(p._max_connections, p._max_keepalive_connections) for p in pools] == [(7, 7)] * 4
    # (httpcore caps keep-alive at max_connections: None shares as "no more than that")


def test_our_pools_are_25_shards_of_4_connections_kept_alive() -> None:
    assert (MAX_CONNECTIONS, SHARDS) == (100, 25)
    for make in (default_async_client, default_sync_client):
        client: Any = make()
        transport = client._transport
        assert type(transport).__name__ in ("AsyncShardedTransport", "ShardedTransport")
        lib = library.of(client)
        assert lib is library.preferred()
        assert len(transport._shards) == 25
        assert all(
            type(shard) in (lib.AsyncHTTPTransport, lib.HTTPTransport)
            for shard in transport._shards
        )
        pool = transport._shards[0]._pool  # the library's own pool: its limits as we set them
        assert (pool._max_connections, pool._max_keepalive_connections) == (4, 4)
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY


@pytest.fixture
async def peers() -> AsyncIterator[tuple[list[object], str]]:
    """A server answering every check once 100 are in (so a burst of 100 needs 100
    connections at once), and the connection (peer address) of each request."""
    seen: list[object] = []
    body = json.dumps(UNMETERED_ACCESS_ANSWER).encode()
    full = asyncio.Event()

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.transport.get_extra_info("peername") if request.transport else None)
        if len(seen) % 100 == 0:
            full.set()
        await full.wait()
        if len(seen) % 100 == 0:
            full.clear()  # the next burst waits for its own 100
        return web.Response(body=body, content_type="application/json")

    async with serving(handle, "/api") as url:
        yield seen, url


async def test_a_second_burst_of_100_reuses_the_first_bursts_100_connections(
    peers: tuple[list[object], str],
) -> None:
    seen, url = peers
    async with AsyncChatarminOS(api_key=KEY, base_url=url) as client:
        for burst in range(2):
            answers = await asyncio.gather(
                *(
                    client.features.check(company_id="c1", feature_code=f"f{burst}_{n}")
                    for n in range(100)
                )
            )
            assert [answer.current_usage for answer in answers] == [1] * 100
            if burst == 0:
                first = set(seen)
    assert len(seen) == 200
    assert len(first) == 100  # all at once: one connection each...
    assert set(seen) == first  # ...all kept: the second burst opened none
