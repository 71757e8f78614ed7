#!/usr/bin/env python3
"""``billing.reserve`` + ``commit`` against checking and metering over HTTP, in one run.

    uv run python benchmarks/bench_reserve.py [--rounds 50] [--quick]

Rows, each comparing medians over interleaved rounds (reserve, baseline, reserve, ...; the
median of the per-round ratios), so the load of a shared machine shifting mid-run hits both
sides alike. The baseline is what exact enforcement costs without a ledger: a live
``features.check`` then a ``billing.track_usage``, both over loopback HTTP to ``chatarmin-os
serve`` in a subprocess, blocking client.

1. ``with client.billing.reserve(...)``: hold, then commit (metered through the usage
   buffer, whose worker sends in the background of the same process) with the ledger in
   Redis (``CacheOptions(redis_url=...)``: one round trip a reservation, its hold carrying
   the previous commit and the answers the buffer heard meanwhile). Target: at least
   5x faster than the baseline. Needs ``redis-server`` on ``PATH`` (started here on a free
   port); skipped, and said so, without it.
2. The same with the ledger in the process (no Redis).

The feature has a limit far above what the run uses, so every hold is admitted and every
reservation is a ledger hit (the first asks the server once). Ratios, not microseconds, are
what to compare between machines. ``--quick`` runs two rounds (a smoke run for CI).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from _common import Runner, compare, start_serve, timed
from bench_cache import redis_server

from chatarmin_os import CacheOptions, ChatarminOS

KEY = "os_sk_bench"
LIMIT = 1_000_000_000


def reserve_commit(client: ChatarminOS, company_id: str) -> Callable[[], object]:
    def run() -> object:
        with client.billing.reserve(company_id=company_id, feature_code="ai_credit") as r:
            pass
        return r

    return run


def settled(runner: Runner, client: ChatarminOS) -> Runner:
    """``runner``, then (untimed) the usage buffer flushed: the metering a round of
    reservations started in the background never runs into the baseline's next round."""

    def run(n: int) -> float:
        took = runner(n)
        assert client.flush(timeout=60) == 0
        return took

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    # Calls per round: ~10-20 ms of each side.
    http_calls, redis_calls, memory_calls = 5, 50, 500
    process, base_url = start_serve(KEY)
    rows: list[tuple[str, float, float, float]] = []
    try:
        plain = ChatarminOS(api_key=KEY, base_url=base_url)
        company = plain.companies.create(name="Bench Inc")
        plain.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=LIMIT
        )

        def check_and_track() -> object:
            access = plain.features.check(company_id=company.id, feature_code="ai_credit")
            assert access.can_use
            return plain.billing.track_usage(
                company_id=company.id, feature_code="ai_credit", quantity=1
            )

        with redis_server() as url:
            if url is None:
                print("redis-server not found on PATH: the Redis row is skipped")
            else:
                shared = ChatarminOS(
                    api_key=KEY, base_url=base_url, cache=CacheOptions(redis_url=url)
                )
                run = reserve_commit(shared, company.id)
                assert run().state == "committed"  # type: ignore[attr-defined]
                assert shared._reservations().ledger.shared
                mine, theirs, ratio = compare(
                    settled(timed(run), shared),
                    timed(check_and_track),
                    (redis_calls, http_calls),
                    rounds,
                )
                rows.append(("reserve+commit, Redis ledger", mine, theirs, ratio))
                assert shared.flush(timeout=60) == 0
                assert shared.cache.stats().redis_errors == 0  # type: ignore[union-attr]
                shared.close()

        local = ChatarminOS(api_key=KEY, base_url=base_url)
        run = reserve_commit(local, company.id)
        run()
        mine, theirs, ratio = compare(
            settled(timed(run), local), timed(check_and_track), (memory_calls, http_calls), rounds
        )
        rows.append(("reserve+commit, in-process", mine, theirs, ratio))
        assert local.flush(timeout=60) == 0
        local.close()
        plain.close()
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"{'call':30} {'µs':>9}   {'check+track over HTTP µs':>24}   result")
    for what, mine, theirs, ratio in rows:
        verdict = f"{1 / ratio:,.1f}x faster (median of the rounds' ratios)"
        print(f"{what:30} {mine * 1e6:9.1f}   {theirs * 1e6:24.1f}   {verdict}")


if __name__ == "__main__":
    main()
