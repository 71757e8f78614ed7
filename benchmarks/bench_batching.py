#!/usr/bin/env python3
"""Request batching against the real ``@trpc/server``, with ratios measured in the same run.

    uv run python benchmarks/bench_batching.py [--waves 20] [--rounds 5] [--quick]

The Node reference router (``tests/conformance/server.mjs``, plain JSON) answers every call;
each measurement sends ``waves`` waves of 100 ``features.check`` calls made at the same time
(``asyncio.gather``), each wave awaited before the next. Rounds are interleaved (unbatched,
batched, official client, ...) and the medians compared:

1. ``AsyncChatarminOS(batching=True)`` against the same client without batching
   (target >= 8x the calls/s);
2. the batched client against the official ``@trpc/client`` with ``httpBatchLink`` (Node),
   whose calls/s is measured inside its own process (target >= 1.0x).

``--quick`` is a smoke run for CI (few calls; the numbers mean nothing). Needs Node.js and the
conformance dependencies (``npm ci`` in tests/conformance, done here when missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatarmin_os import AsyncChatarminOS  # noqa: E402
from tests.support.reference_server import (  # noqa: E402
    CONFORMANCE_DIR,
    ReferenceServer,
    find_node,
)

KEY = "os_sk_bench"
CONCURRENT = 100


async def python_rate(base_url: str, batching: bool, waves: int) -> float:
    async with AsyncChatarminOS(api_key=KEY, base_url=base_url, batching=batching) as client:

        async def wave(n: int) -> None:
            await asyncio.gather(
                *(
                    # all different: identical queries would be sent once
                    client.features.check(company_id="comp_1", feature_code=f"f{n}_{i}")
                    for i in range(CONCURRENT)
                )
            )

        await wave(0)  # warm up: connections
        started = time.perf_counter()
        for n in range(waves):
            await wave(n)
        return waves * CONCURRENT / (time.perf_counter() - started)


def node_rate(base_url: str, waves: int, link: str = "batch") -> float:
    """Calls/s of the official ``@trpc/client`` (``link``: ``batch`` for httpBatchLink,
    ``http`` for httpLink), measured inside its own process."""
    out = subprocess.run(
        [
            find_node(),
            str(CONFORMANCE_DIR / "bench-client.mjs"),
            "--url",
            base_url,
            "--api-key",
            KEY,
            "--concurrent",
            str(CONCURRENT),
            "--waves",
            str(waves),
            "--link",
            link,
        ],
        cwd=CONFORMANCE_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout)
    return float(result["calls"]) / float(result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    waves, rounds = (2, 1) if args.quick else (args.waves, args.rounds)
    server = ReferenceServer.start("json")
    try:
        unbatched: list[float] = []
        batched: list[float] = []
        official: list[float] = []
        for _ in range(rounds):
            server.reset()  # the router records every call: keep it small
            unbatched.append(asyncio.run(python_rate(server.base_url, False, waves)))
            batched.append(asyncio.run(python_rate(server.base_url, True, waves)))
            official.append(node_rate(server.base_url, waves))
    finally:
        server.stop()
    plain, ours, theirs = (statistics.median(v) for v in (unbatched, batched, official))
    print(f"{CONCURRENT} concurrent features.check, {waves} waves, median of {rounds} rounds")
    print(f"  AsyncChatarminOS, no batching     {plain:9.0f} calls/s")
    print(f"  AsyncChatarminOS, batching=True   {ours:9.0f} calls/s")
    print(f"  @trpc/client httpBatchLink (Node) {theirs:9.0f} calls/s")
    print(f"  batched / unbatched:              {ours / plain:6.2f}x  (target >= 8)")
    print(f"  batched / official client:        {ours / theirs:6.2f}x  (target >= 1.0)")


if __name__ == "__main__":
    main()
