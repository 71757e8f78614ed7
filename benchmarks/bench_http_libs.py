#!/usr/bin/env python3
"""Unbatched calls over HTTP, library by library, against the real ``@trpc/server``.

    uv run python benchmarks/bench_http_libs.py [--waves 20] [--rounds 5] [--quick]

The Node reference router (``tests/conformance/server.mjs``, plain JSON) answers every call;
each measurement sends ``waves`` waves of 100 ``features.check`` calls made at the same time,
one HTTP request per call (no batching), each wave awaited before the next. Rounds are
interleaved and the medians compared with the official ``@trpc/client`` ``httpLink`` (Node,
measured inside its own process):

* ``AsyncChatarminOS`` on its default pool with httpx2 (the default when installed; target
  >= 1x the official httpLink), on its default pool forced to httpx
  (``CHATARMIN_OS_HTTP_LIBRARY=httpx``), and through ``DefaultAioHttpClient`` (target >= 2x
  the official httpLink);
* the same GET sent raw (no SDK) with aiohttp, httpx and, when installed, httpx2: what each
  library costs by itself.

The Node server's own CPU time per call is measured too (Linux, all its threads): one Node
event loop answers every runner, so ``1 / (its CPU per call)`` is roughly the most calls/s any
client gets from it on this machine, however cheap the client (V8's helper threads make it
an estimate, not a bound). On a 2-core machine the client and the server also share the
cores: near that ceiling, a client's ratio over the official one says as much about the
machine as about the client.

When ``wrk`` (a load generator in C) is installed, it is run against the same server too
(one thread, 100 keep-alive connections, no waves: the server is never left waiting): the
most calls/s this server answers on this machine, whatever the client.

``--quick`` is a smoke run for CI (few calls; the numbers mean nothing). Needs Node.js and the
conformance dependencies (``npm ci`` in tests/conformance, done here when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from bench_batching import CONCURRENT, KEY, node_rate  # noqa: E402

from chatarmin_os import AsyncChatarminOS, DefaultAioHttpClient  # noqa: E402
from chatarmin_os._client.library import ENV_VAR  # noqa: E402
from tests.support.reference_server import ReferenceServer  # noqa: E402

try:
    import httpx2  # type: ignore[import-not-found, unused-ignore]
except ImportError:  # Python < 3.11, or not installed
    httpx2 = None

HEADERS = {"Authorization": f"Bearer {KEY}"}

Call = Callable[[str], Awaitable[object]]
"""Sends one features.check for a feature code."""


async def waves_per_second(call: Call, waves: int) -> float:
    async def wave(n: int) -> None:
        # all different: identical queries could be answered once
        await asyncio.gather(*(call(f"f{n}_{i}") for i in range(CONCURRENT)))

    await wave(0)  # warm up: connections
    started = time.perf_counter()
    for n in range(waves):
        await wave(n)
    return waves * CONCURRENT / (time.perf_counter() - started)


def check_url(base_url: str, feature: str) -> str:
    data = json.dumps({"companyId": "comp_1", "featureCode": feature}, separators=(",", ":"))
    return f"{base_url}/features.check?input={quote(data, safe='')}"


async def sdk_rate(base_url: str, waves: int, http_client: Any = None) -> float:
    async with AsyncChatarminOS(api_key=KEY, base_url=base_url, http_client=http_client) as client:

        async def call(feature: str) -> object:
            return await client.features.check(company_id="comp_1", feature_code=feature)

        try:
            return await waves_per_second(call, waves)
        finally:
            if http_client is not None:
                await http_client.aclose()


async def sdk_default(base_url: str, waves: int, library: str) -> float:
    """The SDK on its own pool, made with ``library`` (forced as a user would: the variable)."""
    before = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = library
    try:
        return await sdk_rate(base_url, waves)
    finally:
        if before is None:
            del os.environ[ENV_VAR]
        else:
            os.environ[ENV_VAR] = before


async def sdk_httpx(base_url: str, waves: int) -> float:
    return await sdk_default(base_url, waves, "httpx")


async def sdk_httpx2(base_url: str, waves: int) -> float:
    return await sdk_default(base_url, waves, "httpx2")


async def sdk_aiohttp(base_url: str, waves: int) -> float:
    return await sdk_rate(base_url, waves, DefaultAioHttpClient())


async def raw_aiohttp(base_url: str, waves: int) -> float:
    connector = aiohttp.TCPConnector(limit=CONCURRENT)
    async with aiohttp.ClientSession(connector=connector, headers=HEADERS) as session:

        async def call(feature: str) -> object:
            async with session.get(check_url(base_url, feature)) as answer:
                answer.raise_for_status()
                return await answer.json()

        return await waves_per_second(call, waves)


async def raw_httpx_like(base_url: str, waves: int, module: Any) -> float:
    # idle connections dropped before Node's 5 s keep-alive ends (as the SDK's pool does)
    limits = module.Limits(
        max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT, keepalive_expiry=4.0
    )
    async with module.AsyncClient(headers=HEADERS, limits=limits) as http:

        async def call(feature: str) -> object:
            try:
                answer = await http.get(check_url(base_url, feature))
            except module.RemoteProtocolError:  # a keep-alive race under load: once more
                answer = await http.get(check_url(base_url, feature))
            answer.raise_for_status()
            return answer.json()

        return await waves_per_second(call, waves)


async def raw_httpx(base_url: str, waves: int) -> float:
    return await raw_httpx_like(base_url, waves, httpx)


async def raw_httpx2(base_url: str, waves: int) -> float:
    return await raw_httpx_like(base_url, waves, httpx2)


def wrk_rate(wrk: str, url: str, seconds: int = 3) -> float:
    """Calls/s ``wrk`` gets from the server: one thread, 100 connections, ``seconds`` long."""
    out = subprocess.run(
        [wrk, "-t1", f"-c{CONCURRENT}", f"-d{seconds}s", "-H", f"Authorization: Bearer {KEY}", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no rate:\n{out}")
    return float(found.group(1))


WRK = "wrk (C load generator, no waves)"
SDK_HTTPX2 = "SDK through httpx2 (default pool)"
RUNNERS: dict[str, Callable[[str, int], Awaitable[float]]] = {}
if httpx2 is not None:
    RUNNERS[SDK_HTTPX2] = sdk_httpx2
RUNNERS["SDK through httpx (default pool, forced)"] = sdk_httpx
RUNNERS["AsyncChatarminOS, DefaultAioHttpClient"] = sdk_aiohttp
RUNNERS["raw aiohttp"] = raw_aiohttp
RUNNERS["raw httpx"] = raw_httpx
if httpx2 is not None:
    RUNNERS["raw httpx2"] = raw_httpx2
OFFICIAL = "@trpc/client httpLink (Node)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    waves, rounds = (2, 1) if args.quick else (args.waves, args.rounds)
    server = ReferenceServer.start("json")
    rates: dict[str, list[float]] = {name: [] for name in [OFFICIAL, *RUNNERS]}
    server_cpu: dict[str, list[float]] = {name: [] for name in rates}
    calls = (waves + 1) * CONCURRENT  # the warm-up wave included: the server answers it too

    def measured(name: str, run: Callable[[], float]) -> None:
        # The router records every call (and each request): emptied before every
        # measurement, so none runs against a bigger heap than another.
        server.reset()
        before = server.cpu_seconds()
        rates[name].append(run())
        after = server.cpu_seconds()
        if before is not None and after is not None:
            server_cpu[name].append((after - before) / calls * 1e6)

    wrk = None if args.quick else shutil.which("wrk")
    if wrk is not None:
        rates[WRK], server_cpu[WRK] = [], []
    try:
        for _ in range(rounds):
            measured(OFFICIAL, lambda: node_rate(server.base_url, waves, link="http"))
            if wrk is not None:
                url = check_url(server.base_url, "f0_0")
                server.reset()
                rates[WRK].append(wrk_rate(wrk, url))
            for name, runner in RUNNERS.items():
                measured(name, lambda runner=runner: asyncio.run(runner(server.base_url, waves)))
    finally:
        server.stop()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians[OFFICIAL]
    print(f"{CONCURRENT} concurrent unbatched features.check, {waves} waves, median of {rounds}")
    for name, rate in medians.items():
        cpu = server_cpu[name]
        served = f"  server {statistics.median(cpu):4.0f} us CPU/call" if cpu else ""
        print(f"  {name:40} {rate:8.0f} calls/s  {rate / baseline:5.2f}x official{served}")
    aio_cpu = server_cpu["AsyncChatarminOS, DefaultAioHttpClient"]
    if aio_cpu and not args.quick:  # a smoke run's few calls: clock ticks, not costs
        ceiling = 1e6 / statistics.median(aio_cpu)
        print(
            f"  one core spending the server's CPU per call on each of the SDK's calls "
            f"answers ~{ceiling:.0f} calls/s ({ceiling / baseline:4.2f}x official)"
        )
    if httpx2 is None:
        print("  (httpx2 not installed: not measured)")
    if httpx2 is not None:
        through = medians[SDK_HTTPX2] / baseline
        print(f"  SDK through httpx2 / official httpLink: {through:5.2f}x  (target >= 1)")
    aio = medians["AsyncChatarminOS, DefaultAioHttpClient"] / baseline
    print(f"  SDK through aiohttp / official httpLink: {aio:5.2f}x  (target >= 2)")


if __name__ == "__main__":
    main()
