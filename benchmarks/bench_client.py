#!/usr/bin/env python3
"""How much the SDK adds per call, against raw httpx measured in the same run.

    uv run python benchmarks/bench_client.py [--calls 2000] [--rounds 7] [--quick]

Each row pits an SDK call against what any client must at least do for the same wire
request: raw ``httpx`` (``Client.get``/``post`` of the same URL and body) and
``json.loads`` of the answer. The two run in interleaved rounds (SDK, raw, SDK, raw, ...);
the medians of the per-call times are compared. Ratios, not microseconds, are what to compare
between machines. Targets (issue "production-safe core"): at most 0.8x on the in-memory
transport and at most 1.0x over loopback HTTP.

1. In memory: an ``httpx.MockTransport`` answering a canned ``features.check`` /
   ``billing.trackUsage`` result, given to both as ``http_client`` (so the SDK takes the same
   caller's-client path a user's app does).
2. Loopback HTTP: ``chatarmin-os serve`` in a subprocess on a free port; the SDK with its own
   pool, raw httpx with a default ``httpx.Client``.

``--quick`` runs a few calls of each (a smoke run for CI: it proves the script works, its
numbers mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from itertools import count

import httpx
from _common import Runner, compare, start_serve, timed

from chatarmin_os import AsyncChatarminOS, ChatarminOS
from chatarmin_os._wire import dumps, encode_uri_component

BASE = "https://bench.invalid/api/v1"
KEY = "os_sk_bench"
ACCESS = {
    "featureCode": "ai_credit",
    "isEnabled": True,
    "canUse": True,
    "hasQuantity": True,
    "currentUsage": 5,
    "quantityLimit": 100,
    "includedQuantity": 50,
    "remaining": 95,
}
USAGE = {
    "featureCode": "ai_credit",
    "currentUsage": 6,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
    "billableQuantity": 6,
    "isAtLimit": False,
    "duplicate": False,
}
CHECK_BODY = json.dumps({"result": {"data": ACCESS}}).encode()
USAGE_BODY = json.dumps({"result": {"data": USAGE}}).encode()


def canned(request: httpx.Request) -> httpx.Response:
    body = USAGE_BODY if request.method == "POST" else CHECK_BODY
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


def check_url(base: str, company_id: str) -> str:
    payload = dumps({"companyId": company_id, "featureCode": "ai_credit"})
    return f"{base}/features.check?input={encode_uri_component(payload)}"


def timed_async(loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[object]]) -> Runner:
    async def many(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await fn()
        return time.perf_counter() - started

    return lambda n: loop.run_until_complete(many(n))


def medians(sdk: Runner, raw: Runner, calls: int, rounds: int) -> tuple[float, float]:
    """Median seconds per call of each, over interleaved rounds (after a warm-up)."""
    first, second, _ = compare(sdk, raw, (calls, calls), rounds)
    return first, second


def in_memory_rows(calls: int, rounds: int) -> list[tuple[str, float, float]]:
    rows = []
    http = httpx.Client(transport=httpx.MockTransport(canned))
    client = ChatarminOS(api_key=KEY, base_url=BASE, http_client=http)
    url = check_url(BASE, "c1")
    keys = count()
    usage_body = dumps({"companyId": "c1", "featureCode": "ai_credit", "quantity": 1})
    headers = {"Content-Type": "application/json"}
    rows.append(
        (
            "features.check, sync, in memory",
            *medians(
                timed(lambda: client.features.check(company_id="c1", feature_code="ai_credit")),
                timed(lambda: json.loads(http.get(url).content)),
                calls,
                rounds,
            ),
        )
    )
    rows.append(
        (
            "billing.track_usage, sync, in memory",
            *medians(
                timed(
                    lambda: client.billing.track_usage(
                        company_id="c1",
                        feature_code="ai_credit",
                        quantity=1,
                        idempotency_key=f"k{next(keys)}",
                    )
                ),
                timed(
                    lambda: json.loads(
                        http.post(
                            f"{BASE}/billing.trackUsage", content=usage_body, headers=headers
                        ).content
                    )
                ),
                calls,
                rounds,
            ),
        )
    )
    loop = asyncio.new_event_loop()
    ahttp = httpx.AsyncClient(transport=httpx.MockTransport(canned))
    aclient = AsyncChatarminOS(api_key=KEY, base_url=BASE, http_client=ahttp)

    async def araw() -> object:
        return json.loads((await ahttp.get(url)).content)

    rows.append(
        (
            "features.check, async, in memory",
            *medians(
                timed_async(
                    loop, lambda: aclient.features.check(company_id="c1", feature_code="ai_credit")
                ),
                timed_async(loop, araw),
                calls,
                rounds,
            ),
        )
    )
    loop.close()
    return rows


def loopback_rows(calls: int, rounds: int) -> list[tuple[str, float, float]]:
    process, base_url = start_serve(KEY)
    try:
        client = ChatarminOS(api_key=KEY, base_url=base_url)
        company = client.companies.create(name="Bench Inc")
        client.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
        )
        http = httpx.Client(headers={"Authorization": f"Bearer {KEY}"})
        url = check_url(base_url, company.id)
        return [
            (
                "features.check, sync, loopback HTTP",
                *medians(
                    timed(
                        lambda: client.features.check(
                            company_id=company.id, feature_code="ai_credit"
                        )
                    ),
                    timed(lambda: json.loads(http.get(url).content)),
                    calls,
                    rounds,
                ),
            )
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    calls, rounds = (20, 1) if args.quick else (args.calls, args.rounds)
    rows = in_memory_rows(calls, rounds) + loopback_rows(max(1, calls // 4), rounds)
    print(f"{'call':40} {'SDK µs':>9} {'raw httpx µs':>13} {'ratio':>7}")
    for what, sdk, raw in rows:
        print(f"{what:40} {sdk * 1e6:9.1f} {raw * 1e6:13.1f} {sdk / raw:7.2f}")


if __name__ == "__main__":
    main()
