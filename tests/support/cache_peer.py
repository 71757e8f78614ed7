"""Another process sharing the cache through Redis, driven line by line (not a test module).

    python -m tests.support.cache_peer BASE_URL API_KEY REDIS_URL

Reads commands on stdin and answers each with one JSON line on stdout:

* ``check COMPANY FEATURE`` -> ``{"source", "remaining", "limit"}``
* ``set_limit COMPANY FEATURE LIMIT`` -> ``{"returned_at", "invalidated_at"}`` (unix times
  the write returned, and its entries were dropped here, just before it was published)
* ``track COMPANY FEATURE QUANTITY`` -> ``{"returned_at", "remaining"}``
* ``wait_dropped N`` -> ``{"at"}``: blocks (at most 10 s) until N messages from other
  processes were applied, then gives the unix time the N-th one was
* ``quit``
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from chatarmin_os import CacheOptions, ChatarminOS


class _Dropped(logging.Handler):
    """Notes when each message from another process was applied, and when this process's
    own writes dropped entries (just before publishing): their log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.times: list[float] = []
        self.own: list[float] = []
        self.changed = threading.Condition()

    def wait(self, count: int) -> float | None:
        """When the ``count``-th message was applied (waiting at most 10 s for it)."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.times) >= count, timeout=10)
            return self.times[count - 1] if len(self.times) >= count else None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("cache: dropped"):
            self.own.append(record.created)
        if record.getMessage().startswith("cache: another process changed"):
            with self.changed:
                self.times.append(record.created)
                self.changed.notify_all()


def main() -> None:
    base_url, api_key, redis_url = sys.argv[1:4]
    dropped = _Dropped()
    logger = logging.getLogger("chatarmin_os")
    logger.addHandler(dropped)
    logger.setLevel(logging.DEBUG)
    client = ChatarminOS(
        api_key=api_key, base_url=base_url, max_retries=0, cache=CacheOptions(redis_url=redis_url)
    )
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "check":
            access = client.features.check(company_id=args[0], feature_code=args[1])
            answer: dict[str, object] = {
                "source": access.source,
                "remaining": access.remaining,
                "limit": access.quantity_limit,
            }
        elif command == "set_limit":
            client.features.set_access(
                company_id=args[0], feature_code=args[1], quantity_limit=int(args[2])
            )
            answer = {"returned_at": time.time(), "invalidated_at": dropped.own[-1]}
        elif command == "track":
            usage = client.billing.track_usage(
                company_id=args[0], feature_code=args[1], quantity=int(args[2])
            )
            answer = {"returned_at": time.time(), "remaining": usage.remaining}
        elif command == "wait_dropped":
            answer = {"at": dropped.wait(int(args[0]))}
        else:
            break
        print(json.dumps(answer), flush=True)
    client.close()


if __name__ == "__main__":
    main()
