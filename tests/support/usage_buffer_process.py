"""A process that tracks usage through the buffer, for the process tests (not a test module).

    python -m tests.support.usage_buffer_process MODE BASE_URL API_KEY SPOOL COMPANY START STOP

Tracks one unit of ``ai_credit`` per index in ``range(START, STOP)`` with the idempotency
key ``ev-<index>`` and prints each index once ``track_usage_later`` returned. Then, in mode
``flush``: flushes, closes and prints the buffer's stats as JSON; in mode ``exit``: just
ends (the interpreter's exit flushes). ``SPOOL`` is a file path, or ``-`` for memory only.
"""

from __future__ import annotations

import dataclasses
import json
import sys

from chatarmin_os import ChatarminOS, UsageBufferOptions


def main(argv: list[str]) -> int:
    mode, base_url, api_key, spool, company_id, start, stop = argv
    client = ChatarminOS(
        api_key=api_key,
        base_url=base_url,
        usage_buffer=UsageBufferOptions(
            spool=None if spool == "-" else spool, flush_interval=0.05, close_timeout=30
        ),
    )
    for index in range(int(start), int(stop)):
        client.billing.track_usage_later(
            company_id=company_id,
            feature_code="ai_credit",
            quantity=1,
            idempotency_key=f"ev-{index}",
        )
        print(index, flush=True)
    if mode == "flush":
        left = client.flush(timeout=60)
        client.close()  # stops the worker: the stats are final
        stats = dataclasses.asdict(client.usage_buffer.stats())
        print(json.dumps({"left": left, **stats}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
