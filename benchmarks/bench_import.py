#!/usr/bin/env python3
"""``chatarmin-os import``'s speed target: 300 organisations over a 50 ms round trip.

    uv run python benchmarks/bench_import.py [--orgs 300] [--delay 0.05] [--concurrency 20]

Every request waits ``--delay`` seconds (``anyio.sleep``, standing in for the network) and
is then answered by an in-process local ChatarminOS (a fresh ``LocalEngine`` per run), so
the numbers are round trips plus the real work of the SDK, the tRPC protocol and SQLite.
Each organisation costs two round trips: ``onboard`` and ``contacts.bulk_upsert``.

Measured in the same run, in interleaved rounds (medians):

* ``chatarmin-os import FILE --concurrency N`` (the command's own code, reading a JSON
  Lines file, given the delayed transport) on all ``--orgs`` rows: the target is at most
  4 s for 300 rows at concurrency 20;
* the README's backfill pattern, one row after another (``concurrency=1``), on a sample
  of ``--sample`` rows, scaled to ``--orgs`` (the full run would take half a minute).

Prints both and their ratio; exits 1 when the concurrent run misses ``--target`` seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from chatarmin_os import AsyncChatarminOS
from chatarmin_os.importer import _cli as _import_cli
from chatarmin_os.importer import import_organisations
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from chatarmin_os.local.transport import AsyncLocalTransport


class DelayedTransport(httpx.AsyncBaseTransport):
    """Waits ``delay`` seconds before each answer of the wrapped transport."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await anyio.sleep(self.delay)
        return await self.inner.handle_async_request(request)


def organisations(count: int) -> list[dict[str, Any]]:
    """Rows shaped like the README's backfill example, three users each."""
    plans = ["free", "pro", "enterprise"]
    return [
        {
            "id": f"org_{n}",
            "name": f"Company {n}",
            "domain": f"company{n}.example",
            "plan": plans[n % 3],
            "adminEmail": f"admin@company{n}.example",
            "createdAt": "2022-03-01T09:00:00.000Z",
            "users": [
                {"email": f"user{u}@company{n}.example", "name": f"User {u}", "role": "Engineer"}
                for u in range(3)
            ],
        }
        for n in range(1, count + 1)
    ]


def timed_command(path: Path, count: int, delay: float, concurrency: int) -> float:
    """``chatarmin-os import PATH --concurrency N`` against a fresh engine; seconds taken."""
    parser = argparse.ArgumentParser()
    _import_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["import", str(path), "--concurrency", str(concurrency)])
    engine = LocalEngine()
    transport = DelayedTransport(AsyncLocalTransport(engine), delay)
    out, err = io.StringIO(), io.StringIO()
    os.environ["OS_API_KEY"] = DEFAULT_API_KEY
    os.environ["CHATARMIN_OS_BASE_URL"] = "http://bench.local/api/v1"
    try:
        started = time.perf_counter()
        status = _import_cli.execute(
            args,
            http_client=httpx.AsyncClient(transport=transport),
            stdout=out,
            stderr=err,
            handle_signals=False,
        )
        elapsed = time.perf_counter() - started
    finally:
        engine.close()
    assert status == 0, (out.getvalue(), err.getvalue())
    assert re.search(rf"^  created +{count}$", out.getvalue(), re.M), out.getvalue()
    assert transport.requests == 2 * count, transport.requests
    return elapsed


async def timed_import(rows: list[dict[str, Any]], delay: float, concurrency: int) -> float:
    """``import_organisations`` against a fresh engine; seconds taken."""
    engine = LocalEngine()
    transport = DelayedTransport(AsyncLocalTransport(engine), delay)
    try:
        async with httpx.AsyncClient(transport=transport) as http:
            client = AsyncChatarminOS(
                api_key=DEFAULT_API_KEY, base_url="http://bench.local/api/v1", http_client=http
            )
            started = time.perf_counter()
            summary = await import_organisations(client, rows, concurrency=concurrency)
            elapsed = time.perf_counter() - started
    finally:
        engine.close()
    assert summary.created == len(rows) and summary.failed == 0, summary
    assert transport.requests == 2 * len(rows), transport.requests
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=300)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per round trip")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--sample", type=int, default=30, help="rows run one after another")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", type=float, default=4.0, help="seconds allowed")
    args = parser.parse_args()

    rows = organisations(args.orgs)
    sample = rows[: args.sample]
    concurrent: list[float] = []
    sequential: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orgs.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        for _ in range(args.rounds):
            concurrent.append(timed_command(path, args.orgs, args.delay, args.concurrency))
            per_row = anyio.run(timed_import, sample, args.delay, 1) / len(sample)
            sequential.append(per_row * args.orgs)
    fast = statistics.median(concurrent)
    slow = statistics.median(sequential)
    print(
        f"{args.orgs} organisations, {args.delay * 1000:.0f} ms per round trip, "
        f"2 round trips each (medians of {args.rounds} interleaved rounds)"
    )
    print(
        f"  --concurrency {args.concurrency:<3}    {fast:6.2f} s  (chatarmin-os import; "
        f"target <= {args.target:g} s)"
    )
    print(f"  one after another   {slow:6.2f} s  (measured on {len(sample)} rows, scaled)")
    print(f"  speed-up            {slow / fast:6.1f}x")
    return 0 if fast <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
