"""Request ids: every answer of the local server names itself in an ``x-request-id`` header.

An id is ``req_`` and 24 lower-case hex digits: 12 drawn from ``os.urandom`` once per process
(drawn again in a forked child), then a 12-digit counter. So ids never repeat within a
process, differ between processes (48 random bits), and cost a counter step, not a system
call, per request. The server always makes its own: a client's ``x-request-id`` is not
echoed, so an id found in a log names exactly one answer of this server and cannot be forged
or reused by a client (a retry is a new request with a new id). Every call of one batch
shares its HTTP request's id.
"""

from __future__ import annotations

import itertools
import os

__all__ = ["REQUEST_ID_HEADER", "new_request_id"]

REQUEST_ID_HEADER = "x-request-id"
"""The answer header that carries the request id (lower case, as HTTP/2 writes it)."""

_prefix = ""
_counter = itertools.count()


def _start() -> None:
    """A new random prefix and a fresh count: at import, and in every forked child."""
    global _prefix, _counter
    _prefix = "req_" + os.urandom(6).hex()
    _counter = itertools.count()


_start()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_start)


def new_request_id() -> str:
    """A fresh request id: ``req_`` and 24 lower-case hex digits, unique per process."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
