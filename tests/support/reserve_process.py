"""Reservations from real threads and processes, for the process tests (not a test module).

    python -m tests.support.reserve_process hammer BASE_URL API_KEY REDIS_URL COMPANY LIMIT THREADS
    python -m tests.support.reserve_process hold BASE_URL API_KEY REDIS_URL COMPANY QUANTITY

``hammer``: ``THREADS`` threads reserve one ``ai_credit`` at a time until the quota is used
up (every third hold of a thread raises inside ``with client.billing.reserve(...)`` and is
released), then the client flushes and closes; prints the committed idempotency keys as
JSON. ``hold``: reserves ``QUANTITY``, prints ``held`` and waits to be killed.
``REDIS_URL`` is ``-`` for the ledger in the process.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from chatarmin_os import CacheOptions, ChatarminOS, PreconditionFailedError, ReservationOptions

FEATURE = "ai_credit"


class Boom(Exception):
    """The work inside a reservation failed (the hold is released)."""


def make_client(base_url: str, api_key: str, redis_url: str, **options: Any) -> ChatarminOS:
    cache = None if redis_url == "-" else CacheOptions(redis_url=redis_url)
    return ChatarminOS(api_key=api_key, base_url=base_url, cache=cache, **options)


def used_up(client: ChatarminOS, company_id: str, limit: int) -> bool:
    """Whether what was committed (reported by the server or in flight) fills the limit:
    a refusal then is final, not the doing of another thread's passing hold."""
    figures = client._reservations().ledger.figures((company_id, FEATURE))
    return figures is not None and figures.reported + figures.in_flight >= limit


def hammer(client: ChatarminOS, company_id: str, limit: int, threads: int) -> list[str]:
    """Reserve from ``threads`` threads until the quota is used up; the committed keys."""
    committed: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(thread: int) -> None:
        start.wait()
        holds = 0
        for _ in range(100_000):  # bounded: ends once a refusal is final
            try:
                with client.billing.reserve(company_id=company_id, feature_code=FEATURE) as r:
                    holds += 1
                    if holds % 3 == 0:
                        raise Boom
                with lock:
                    committed.append(r.idempotency_key)
            except Boom:
                continue
            except PreconditionFailedError:
                if used_up(client, company_id, limit):
                    return

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return committed


def main(argv: list[str]) -> int:
    mode, base_url, api_key, redis_url, company_id, number = argv[:6]
    if mode == "hammer":
        client = make_client(base_url, api_key, redis_url)
        keys = hammer(client, company_id, int(number), int(argv[6]))
        left = client.flush(timeout=60)
        client.close()
        print(json.dumps({"keys": keys, "left": left}), flush=True)
        return 0
    client = make_client(
        base_url, api_key, redis_url, reservations=ReservationOptions(hold_timeout=30)
    )
    reservation = client.billing.reserve(
        company_id=company_id, feature_code=FEATURE, quantity=int(number)
    )
    assert reservation.remaining == 0, reservation.remaining
    print("held", flush=True)
    sys.stdin.read()  # until killed
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
