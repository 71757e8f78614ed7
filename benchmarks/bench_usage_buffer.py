#!/usr/bin/env python3
"""The usage buffer: how fast ``track_usage_later`` enqueues, and what it gains end to end.

    uv run python benchmarks/bench_usage_buffer.py [--events 20000] [--rounds 5] [--quick]

(about a minute; the direct ``track_usage`` rounds take most of it)

Every figure is a median over interleaved rounds (A, B, A, B, ...), each against a baseline
measured in the same run, so the ratios mean something on a busy machine:

1. Enqueue, sync client, in memory: what ``track_usage_later`` costs its caller, in calls per
   second (bursts of 500 with the worker idle; each burst sent, untimed, before the next),
   against building the same checked input alone (``usage_payload``: validation and a fresh
   key, what any call must do). Target: at least 100,000 calls/s.
2. The same with a spool (SQLite, WAL, each event written before the call returns), against
   in memory. Target: at least 20,000 calls/s.
3. Enqueue while ChatarminOS is down (every connection refused, the worker backing off),
   against enqueueing while the worker sends to an in-memory transport (both sharing one
   interpreter, so sending costs the caller some): calls per second, the 99th percentile
   call and the slowest.
   "Flat": down is no slower than up.
4. End to end over loopback HTTP to ``chatarmin-os serve``: events per second from the first
   ``track_usage_later`` to ``flush()`` returning, against the same number of direct
   ``track_usage`` calls one after the other. Target: at least 10x. For scale, the server's
   own limit: bare httpx POSTing ready-made batches of 100 calls against bare httpx POSTing
   one call at a time (what no client can beat: the local server spends ~20 µs per counted
   event in a batch, so batching gains at most about that ratio on this machine). Rounds of
   a quarter of ``--events`` (5,000 by default): long enough that starting and draining the
   pipeline do not dominate.

``--quick`` runs a few events of each (a smoke run for CI; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _common import start_serve

from chatarmin_os import ChatarminOS, UsageBufferOptions
from chatarmin_os._validate import usage_payload

BASE = "https://bench.invalid/api/v1"
KEY = "os_sk_bench"
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
ITEM = {"result": {"data": USAGE}}
BURST = 500  # events per burst when the worker must stay idle (max_batch is one more)


def canned(request: httpx.Request) -> httpx.Response:
    """Every call of a batch (or a plain call) answered with a usage result."""
    if "batch=1" in str(request.url):
        calls = len(request.url.path.rsplit("/", 1)[-1].split(","))
        return httpx.Response(200, content=json.dumps([ITEM] * calls).encode())
    return httpx.Response(200, content=json.dumps(ITEM).encode())


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


Round = Callable[[int], tuple[float, list[float]]]  # n events -> (seconds, each call's seconds)


def enqueue_round(client: ChatarminOS, burst: int | None = None) -> Round:
    """``track_usage_later`` n times; in bursts of ``burst`` sent (untimed) in between, so the
    worker is idle while the caller enqueues, or all at once with the worker sending."""

    def run(n: int) -> tuple[float, list[float]]:
        track = client.billing.track_usage_later
        elapsed = 0.0
        calls: list[float] = []
        note = calls.append
        left = n
        while left:
            size = min(left, burst or n)
            started = time.perf_counter()
            for _ in range(size):
                before = time.perf_counter()
                track(company_id="c1", feature_code="ai_credit", quantity=1)
                note(time.perf_counter() - before)
            elapsed += time.perf_counter() - started
            left -= size
            if burst:
                client.flush(timeout=None)
        if not burst:
            client.flush(timeout=0)  # do not wait: the worker goes on in the background
        return elapsed, calls

    return run


def payload_round(n: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    for _ in range(n):
        usage_payload(company_id="c1", feature_code="ai_credit", quantity=1)
    return time.perf_counter() - started, []


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (the largest for 1.0)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def interleave(a: Round, b: Round, n: int, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per event of each, per round, A and B taking turns (after a warm-up)."""
    a(max(1, n // 10))
    b(max(1, n // 10))
    a_times, b_times = [], []
    for _ in range(rounds):
        a_times.append(a(n)[0] / n)
        b_times.append(b(n)[0] / n)
    return a_times, b_times


def client_over(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> ChatarminOS:
    return ChatarminOS(
        api_key=KEY,
        base_url=BASE,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        usage_buffer=UsageBufferOptions(**options),
    )


def enqueue_rows(n: int, rounds: int) -> list[str]:
    room = {"max_pending": 10 * n * (rounds + 1), "max_batch": BURST + 1, "flush_interval": 3600}
    memory = client_over(canned, **room)
    ours, base = interleave(enqueue_round(memory, BURST), payload_round, n, rounds)
    rows = [row("enqueue, sync, in memory", ours, base, "usage_payload alone", 100_000)]
    with tempfile.TemporaryDirectory() as tmp:
        spooled = client_over(canned, spool=str(Path(tmp) / "usage.db"), **room)
        spool, memory_again = interleave(
            enqueue_round(spooled, BURST), enqueue_round(memory, BURST), n, rounds
        )
        rows.append(row("enqueue, sync, spool", spool, memory_again, "in memory", 20_000))
        spooled.close()
    # Sustained: the worker sends (in batches of 100) while the caller enqueues; down: every
    # connection refused, the worker backing off (really waiting, as in production).
    flowing = {"max_pending": room["max_pending"]}
    sending = client_over(canned, **flowing)
    down = client_over(refused, close_timeout=0.1, **flowing)
    down_run, up_run = enqueue_round(down), enqueue_round(sending)
    down_run(max(1, n // 10))
    up_run(max(1, n // 10))
    down_times: list[float] = []
    up_times: list[float] = []
    down_calls: list[float] = []
    up_calls: list[float] = []
    for _ in range(rounds):
        seconds, calls = down_run(n)
        down_times.append(seconds / n)
        down_calls += calls
        seconds, calls = up_run(n)
        up_times.append(seconds / n)
        up_calls += calls
    rows.append(
        row("enqueue, sync, ChatarminOS down", down_times, up_times, "up, worker sending", None)
    )
    for name, pick in (("99th percentile", 0.99), ("slowest", 1.0)):
        down_at, up_at = (percentile(calls, pick) * 1e6 for calls in (down_calls, up_calls))
        rows.append(f"{f'  {name} call, down / up':44} {down_at:10.1f} µs {up_at:10.1f} µs")
    down.close()
    sending.close()
    memory.close()
    return rows


def row(what: str, ours: list[float], base: list[float], base_name: str, target: int | None) -> str:
    ours_m, base_m = statistics.median(ours), statistics.median(base)
    rate = 1 / ours_m
    verdict = "" if target is None else ("  ok" if rate >= target else f"  BELOW {target:,}/s")
    return (
        f"{what:44} {rate:12,.0f}/s   {base_name}: {1 / base_m:12,.0f}/s   "
        f"ratio {ours_m / base_m:5.2f}x{verdict}"
    )


def end_to_end_rows(n: int, rounds: int) -> list[str]:
    process, base_url = start_serve(KEY)
    try:
        buffered = ChatarminOS(
            api_key=KEY, base_url=base_url, usage_buffer=UsageBufferOptions(max_pending=10 * n)
        )
        direct = ChatarminOS(api_key=KEY, base_url=base_url)
        company = direct.companies.create(name="Bench Inc")
        direct.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
        )

        def later(count: int) -> tuple[float, list[float]]:
            started = time.perf_counter()
            for _ in range(count):
                buffered.billing.track_usage_later(
                    company_id=company.id, feature_code="ai_credit", quantity=1
                )
            left = buffered.flush(timeout=600)
            assert left == 0, f"{left} events not sent"
            return time.perf_counter() - started, []

        def now(count: int) -> tuple[float, list[float]]:
            started = time.perf_counter()
            for _ in range(count):
                direct.billing.track_usage(
                    company_id=company.id, feature_code="ai_credit", quantity=1
                )
            return time.perf_counter() - started, []

        raw = httpx.Client(
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        )
        batch_url = f"{base_url}/{','.join(['billing.trackUsage'] * 100)}?batch=1"

        def raw_input(index: int) -> dict[str, object]:
            key = f"raw-{time.perf_counter_ns()}-{index}"
            return {
                "companyId": company.id,
                "featureCode": "ai_credit",
                "quantity": 1,
                "idempotencyKey": key,
            }

        def raw_batches(count: int) -> tuple[float, list[float]]:
            started = time.perf_counter()
            for _ in range(max(1, count // 100)):
                body = {str(i): raw_input(i) for i in range(100)}
                raw.post(batch_url, content=json.dumps(body)).raise_for_status()
            return time.perf_counter() - started, []

        def raw_single(count: int) -> tuple[float, list[float]]:
            started = time.perf_counter()
            for index in range(count):
                raw.post(
                    f"{base_url}/billing.trackUsage", content=json.dumps(raw_input(index))
                ).raise_for_status()
            return time.perf_counter() - started, []

        ours, base = interleave(later, now, n, rounds)
        raw_batched, raw_one = interleave(raw_batches, raw_single, max(100, n), rounds)
        raw.close()
        stats = buffered.usage_buffer.stats()
        buffered.close()
        direct.close()
        return [
            row("end to end, loopback HTTP (events/s)", ours, base, "track_usage", None)
            + f"  -> {statistics.median(base) / statistics.median(ours):.1f}x faster"
            + (
                "  ok" if statistics.median(base) / statistics.median(ours) >= 10 else "  BELOW 10x"
            ),
            f"{'  buffer stats':44} sent {stats.sent:,}, duplicates {stats.duplicates}, "
            f"refused {stats.refused}, retries {stats.retries}",
            row("  the server's own limit: raw httpx batches", raw_batched, raw_one, "single", None)
            + f"  -> {statistics.median(raw_one) / statistics.median(raw_batched):.1f}x",
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events",
        type=int,
        default=20_000,
        help="events per enqueue round (end to end: a quarter as many)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    events, rounds = (200, 1) if args.quick else (args.events, args.rounds)
    for line in enqueue_rows(events, rounds):
        print(line)
    for line in end_to_end_rows(max(10, events // 4), rounds):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
