"""Request ids: every answer of the local server names itself in an ``x-request-id`` header.

An id is ``req_`` and 24 hex digits (96 random bits from ``os.urandom``: unique per HTTP
request across processes and forks, with no state to share or reset). The server always
makes its own: a client's ``x-request-id`` is not echoed, so an id found in a log names
exactly one answer of this server and cannot be forged or reused by a client (a retry is
a new request with a new id). Every call of one batch shares its HTTP request's id.
"""

from __future__ import annotations

import os

__all__ = ["REQUEST_ID_HEADER", "new_request_id"]

REQUEST_ID_HEADER = "x-request-id"
"""The answer header that carries the request id (lower case, as HTTP/2 writes it)."""


def new_request_id() -> str:
    """A fresh request id: ``req_`` and 24 lower-case hex digits."""
    return "req_" + os.urandom(12).hex()
