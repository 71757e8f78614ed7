#!/usr/bin/env python3
"""The entitlement cache's hot path, against baselines measured in the same run.

    uv run python benchmarks/bench_cache.py [--rounds 200] [--quick]

Three rows, each comparing medians over many short interleaved rounds (cached, baseline,
cached, ...; the median of the per-round ratios for Redis), so the load of a shared machine
shifting mid-run hits both sides alike:

1. A cached ``features.check`` in the blocking client: calls per second (target: at least
   300,000 on a small 2-core machine, i.e. ~3 µs a call).
2. The same cached check against an uncached one, over loopback HTTP to ``chatarmin-os
   serve`` in a subprocess (target: at least 100x faster).
3. A Redis-level hit (``CacheOptions(redis_url=..., local_ttl=0)``: every check reads the
   entry, its usage overlay and its generation from Redis in one ``HMGET``) against a bare
   ``redis`` ``GET`` of a key holding the same bytes (named like the cache's hash), with the
   same client library and server (target: at most 1.5x). Needs ``redis-server`` on ``PATH`` (started here on a free port); skipped, and
   said so, without it.

Entries get a TTL of an hour here, so every cached call of the run is a hit. Ratios, not
microseconds, are what to compare between machines. ``--quick`` runs two rounds (a smoke
run for CI: it proves the script works, its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from _common import compare, start_serve, timed

from chatarmin_os import CacheOptions, ChatarminOS

KEY = "os_sk_bench"
HOUR = 3600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server on a free port (its URL), or ``None`` without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    import redis

    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(
            [binary, *args, "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"redis://127.0.0.1:{port}/0"
            probe = redis.Redis.from_url(url)
            deadline = time.monotonic() + 10
            while True:
                try:
                    probe.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
            probe.close()
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="a smoke run (numbers meaningless)")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    # Calls per round: ~5 ms of each side (an uncached call is ~1000x a cached one).
    cached_calls, http_calls, redis_calls = 10_000, 10, 100
    process, base_url = start_serve(KEY)
    rows: list[tuple[str, str, float, float, str]] = []
    try:
        cached = ChatarminOS(api_key=KEY, base_url=base_url, cache=CacheOptions(ttl=HOUR))
        plain = ChatarminOS(api_key=KEY, base_url=base_url)
        company = plain.companies.create(name="Bench Inc")
        plain.features.set_access(
            company_id=company.id, feature_code="ai_credit", is_enabled=True, quantity_limit=None
        )

        def check_cached() -> object:
            return cached.features.check(company_id=company.id, feature_code="ai_credit")

        def check_http() -> object:
            return plain.features.check(company_id=company.id, feature_code="ai_credit")

        assert check_http().source == "live"  # type: ignore[attr-defined]
        check_cached()
        assert check_cached().source == "cache"  # type: ignore[attr-defined]
        hit, live, _ = compare(
            timed(check_cached), timed(check_http), (cached_calls, http_calls), rounds
        )
        rows.append(
            (
                "cached check (sync)",
                "uncached check over HTTP",
                hit,
                live,
                f"{1 / hit:,.0f} calls/s cached; uncached {live / hit:,.0f}x slower",
            )
        )

        with redis_server() as url:
            if url is None:
                print("redis-server not found on PATH: the Redis row is skipped")
            else:
                import redis

                shared = ChatarminOS(
                    api_key=KEY,
                    base_url=base_url,
                    cache=CacheOptions(ttl=HOUR, redis_url=url, local_ttl=0),
                )

                def check_redis() -> object:
                    return shared.features.check(company_id=company.id, feature_code="ai_credit")

                check_redis()  # live, written to Redis
                assert check_redis().source == "cache"  # type: ignore[attr-defined]
                bare = redis.Redis.from_url(url)
                bucket = shared.cache._redis.keys.company(company.id)  # type: ignore[union-attr]
                entry = bare.hget(bucket, "chk:ai_credit")
                assert entry is not None
                bare_key = f"{bucket}:get"  # as long a name as the hash the cache reads
                bare.set(bare_key, entry)
                redis_hit, get, ratio = compare(
                    timed(check_redis),
                    timed(lambda: bare.get(bare_key)),
                    (redis_calls, redis_calls),
                    rounds,
                )
                stats = shared.cache.stats()  # type: ignore[union-attr]
                assert stats.redis_hits >= redis_calls * rounds, stats
                rows.append(
                    (
                        "Redis-level hit (sync)",
                        "bare redis GET",
                        redis_hit,
                        get,
                        f"{ratio:.2f}x a bare GET (median of the rounds' ratios)",
                    )
                )
                shared.close()
                bare.close()
        cached.close()
        plain.close()
    finally:
        process.terminate()
        process.wait(timeout=10)

    print(f"{'call':24} {'µs':>8}   {'baseline':26} {'µs':>8}   result")
    for what, baseline, mine, theirs, verdict in rows:
        print(f"{what:24} {mine * 1e6:8.2f}   {baseline:26} {theirs * 1e6:8.2f}   {verdict}")


if __name__ == "__main__":
    main()
