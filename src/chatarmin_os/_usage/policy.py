"""What a failed send means for an event, how long to back off, and how a loss is told."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from .._base import retry_after, retry_delay
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ChatarminOSError,
    InvalidInputError,
)
from .._logs import logger
from .errors import UnlinkedOrgError

if TYPE_CHECKING:
    from .events import UsageEvent
    from .options import OnError

__all__ = [
    "BACKOFF_START",
    "Outcome",
    "backoff_delay",
    "classify",
    "describe_failure",
    "refuses_whole_batch",
    "report_lost",
]

Outcome = Literal["refused", "retry", "auth"]


def classify(error: ChatarminOSError) -> Outcome:
    """What a failed send means for an event.

    ``"refused"``: ChatarminOS answered the call with a tRPC error of 4xx that is not about
    the request's timing or credentials (``PRECONDITION_FAILED``, ``FORBIDDEN``,
    ``NOT_FOUND``, ``BAD_REQUEST``, ``CONFLICT``, ...), bad input, or an unlinked org: never
    sent again. ``"auth"``: 401, a configuration problem: kept and retried, loudly.
    ``"retry"``: everything else (no answer, 408, 429, 5xx, a proxy's page, an answer that
    is no tRPC result): sent again, with the same key, after a backoff.
    """
    if isinstance(error, (InvalidInputError, UnlinkedOrgError)):
        return "refused"
    if isinstance(error, AuthenticationError):
        return "auth"
    if isinstance(error, APIStatusError):
        status = error.status_code
        if error.code is not None and 400 <= status < 500 and status not in (408, 429):
            return "refused"
    return "retry"


_TOO_LARGE = (413, 414, 431)  # the body, the URL (the batch's paths), or the headers


def refuses_whole_batch(error: ChatarminOSError | object) -> bool:
    """Whether an error is the answer to a whole batch rather than to one of its calls, and
    says no to the batch as such (too many calls, a request too large, no batching, ...).

    The events of such a batch were never run: sent again in smaller batches, they are
    counted. The client names a whole batch's error by the batch's paths joined with commas
    (``billing.trackUsage,billing.trackUsage``); a call's own error names its procedure.
    Any 4xx that would refuse an event refuses the batch here, and so do 413, 414 and 431
    without a tRPC code (a proxy's limit).
    """
    if not isinstance(error, APIStatusError) or "," not in error.path:
        return False
    return error.status_code in _TOO_LARGE or classify(error) == "refused"


_REPEATED_PATH = re.compile(r"\b([A-Za-z][\w]*\.[\w.]+)((?:,\1\b)+)")


def describe_failure(error: ChatarminOSError) -> str:
    """``"ClassName: message"``, a batch's repeated procedure path said once, at most 300
    characters (for the log and ``stats().last_error``)."""

    def once(match: re.Match[str]) -> str:
        return f"{match.group(1)} x{match.group(2).count(',') + 1}"

    message = error.message if isinstance(error, APIConnectionError) else str(error)
    text = f"{type(error).__name__}: {_REPEATED_PATH.sub(once, message)}"
    return text if len(text) <= 300 else text[:299] + "…"


BACKOFF_START = 0.1
"""Seconds before the second retry in a row of a failed batch (the first is at once)."""


def backoff_delay(failures: int, headers: Mapping[str, str] | None) -> float:
    """Seconds to wait after the ``failures``-th failed round in a row.

    A usable ``Retry-After`` (or ``retry-after-ms``, 0 to 60 s) from the answer wins. Else
    the first failure is retried at once (a lost answer or a reset connection is a blip, and
    the keys make a repeat harmless), then the client's backoff from 0.1 s: doubling up to
    8 s, up to 25 % less at random so processes that failed together do not retry together
    (a ``Retry-After`` asking for more than 60 s, or unreadable, does not stop the growth).
    """
    after = retry_after(headers)
    if after is not None:
        return after
    if failures <= 1:
        return 0.0
    return retry_delay(failures - 2, None, initial=BACKOFF_START)


def report_lost(
    on_error: OnError | None, event: UsageEvent, error: ChatarminOSError, *, what: str
) -> None:
    """Tell ``on_error`` (or the log) about an event that will never be counted."""
    if on_error is None:
        logger.warning("Usage event %r %s: %s: %s", event, what, type(error).__name__, error)
        return
    try:
        on_error(event, error)
    except Exception:
        logger.exception("chatarmin_os: the usage buffer's on_error raised")
