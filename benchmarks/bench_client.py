#!/usr/bin/env python3
"""How much the SDK adds per call, against baselines measured in the same run.

    uv run python benchmarks/bench_client.py [--calls 3000]

1. ``features.check`` through ``ChatarminOS`` / ``AsyncChatarminOS`` (validation, codec,
   retry loop, pydantic model) vs the same GET done with bare httpx + ``json.loads`` on the
   same in-memory transport: the ratio is the SDK's overhead over what any client must do.
2. ``billing.track_usage`` through ``ChatarminOS.local()`` (SDK + tRPC protocol + engine) vs
   ``LocalEngine.call`` directly (the SQLite transaction alone).

Timings use the best of several rounds (``time.perf_counter``); ratios, not absolute
numbers, are what to compare between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable

import httpx

from chatarmin_os import AsyncChatarminOS, ChatarminOS
from chatarmin_os._wire import dumps, encode_uri_component
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine

BASE = "https://bench.invalid/api/v1"
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
BODY = json.dumps({"result": {"data": ACCESS}}).encode()


def handler(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=BODY, headers={"content-type": "application/json"})


def best_per_call(run: Callable[[int], None], calls: int, rounds: int = 5) -> float:
    run(max(1, calls // 10))  # warm up
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run(calls)
        best = min(best, time.perf_counter() - started)
    return best / calls


def bench_sync(calls: int) -> tuple[float, float]:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    url = f"{BASE}/features.check?input=" + encode_uri_component(
        dumps({"companyId": "c1", "featureCode": "ai_credit"})
    )

    def baseline(n: int) -> None:
        for _ in range(n):
            json.loads(http.get(url).content)["result"]["data"]

    client = ChatarminOS(api_key="os_sk_bench", base_url=BASE, http_client=http)

    def sdk(n: int) -> None:
        for _ in range(n):
            client.features.check(company_id="c1", feature_code="ai_credit")

    return best_per_call(baseline, calls), best_per_call(sdk, calls)


def bench_async(calls: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = AsyncChatarminOS(api_key="os_sk_bench", base_url=BASE, http_client=http)
        url = f"{BASE}/features.check?input=" + encode_uri_component(
            dumps({"companyId": "c1", "featureCode": "ai_credit"})
        )

        async def timed(fn: Callable[[], object], n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                await fn()  # type: ignore[misc]
            return time.perf_counter() - started

        async def raw() -> object:
            return json.loads((await http.get(url)).content)["result"]["data"]

        async def sdk() -> object:
            return await client.features.check(company_id="c1", feature_code="ai_credit")

        results = []
        for fn in (raw, sdk):
            await timed(fn, max(1, calls // 10))
            results.append(min([await timed(fn, calls) for _ in range(5)]) / calls)
        return results[0], results[1]

    return asyncio.run(main())


def bench_local(calls: int) -> tuple[float, float]:
    engine = LocalEngine()
    client = ChatarminOS.local(engine)
    company = client.companies.create(name="Bench Inc")
    client.features.set_access(
        company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
    )

    def direct(n: int) -> None:
        for _ in range(n):
            engine.call(
                "billing.trackUsage",
                {"companyId": company.id, "featureCode": "ai_credit", "quantity": 1},
                api_key=DEFAULT_API_KEY,
            )

    def sdk(n: int) -> None:
        for _ in range(n):
            client.billing.track_usage(company_id=company.id, feature_code="ai_credit", quantity=1)

    return best_per_call(direct, calls // 3, rounds=3), best_per_call(sdk, calls // 3, rounds=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    calls = parser.parse_args().calls
    rows = [
        ("features.check, sync", "bare httpx + json", *bench_sync(calls)),
        ("features.check, async", "bare httpx + json", *bench_async(calls)),
        ("track_usage, ChatarminOS.local()", "LocalEngine.call", *bench_local(calls)),
    ]
    print(f"{'what':36} {'baseline':20} {'baseline µs':>12} {'SDK µs':>10} {'ratio':>7}")
    for what, base, baseline, sdk in rows:
        print(f"{what:36} {base:20} {baseline * 1e6:12.1f} {sdk * 1e6:10.1f} {sdk / baseline:7.2f}")


if __name__ == "__main__":
    main()
