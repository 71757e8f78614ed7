"""Configuration and retry policy shared by both clients (no I/O here).

Retry policy, as the issue asks and the best SDKs do:

* retried: connection errors, timeouts, HTTP 408, 429, 500, 502, 503, 504; nothing else;
* queries are always retried; a mutation only when it cannot apply twice: the request
  never left (a connect error or a connect/pool timeout), the server refused it
  unprocessed (429), or it carries an idempotency key;
* the wait is ``min(0.5 s * 2**retry, 8 s)`` less up to 25 % jitter, unless the answer
  carries ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) of at most 60 s,
  which is then honoured exactly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._exceptions import APIConnectionError, APIStatusError, ChatarminOSError
from ._types import NotGiven, Timeout, Transformer
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ClientConfig",
    "retry_delay",
    "should_retry",
]

DEFAULT_BASE_URL = "https://os.chatarmin.com/api/v1"
"""Where the hosted ChatarminOS API lives."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
"""30 s to read, write or wait for a pooled connection; 5 s to connect."""

DEFAULT_MAX_RETRIES = 2
"""Retries after the first attempt, so at most three attempts."""

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

USER_AGENT = f"chatarmin-os-python/{__version__}"


def _redact(key: str) -> str:
    return "<redacted>" if key else "<missing>"


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client is configured with; ``with_options`` makes a changed copy."""

    api_key: str = field(repr=False)
    base_url: httpx.URL
    timeout: Timeout
    max_retries: int
    transformer: Transformer
    default_headers: Mapping[str, str]

    def __repr__(self) -> str:
        return (
            f"ClientConfig(base_url={str(self.base_url)!r}, api_key={_redact(self.api_key)}, "
            f"timeout={self.timeout!r}, max_retries={self.max_retries}, "
            f"transformer={self.transformer!r})"
        )

    @classmethod
    def create(
        cls,
        *,
        api_key: str | None,
        base_url: str | httpx.URL | None,
        timeout: Timeout | NotGiven,
        max_retries: int,
        transformer: Transformer,
        default_headers: Mapping[str, str] | None,
    ) -> ClientConfig:
        """Resolve arguments and environment (``OS_API_KEY``, ``CHATARMIN_OS_BASE_URL``)."""
        if api_key is None:
            api_key = os.environ.get("OS_API_KEY")
        if not api_key:
            raise ChatarminOSError(
                "No API key: pass api_key=... or set the OS_API_KEY environment variable "
                "(keys look like os_sk_..., from ChatarminOS → Settings → Developers)."
            )
        if not isinstance(api_key, str) or api_key != api_key.strip():
            raise ChatarminOSError("api_key must be a string without surrounding whitespace")
        if base_url is None:
            base_url = os.environ.get("CHATARMIN_OS_BASE_URL") or DEFAULT_BASE_URL
        url = httpx.URL(str(base_url))
        if url.scheme not in ("http", "https") or not url.host:
            raise ChatarminOSError(f"base_url must be an http(s) URL, got {str(base_url)!r}")
        # Keep a path prefix such as /api/v1 when procedure paths are joined onto it.
        if not url.raw_path.endswith(b"/"):
            url = url.copy_with(raw_path=url.raw_path + b"/")
        if transformer not in ("json", "superjson"):
            raise ChatarminOSError(
                f"transformer must be 'json' or 'superjson', got {transformer!r}"
            )
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ChatarminOSError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if isinstance(timeout, NotGiven):
            timeout = DEFAULT_TIMEOUT
        elif timeout is not None and not isinstance(timeout, (int, float, httpx.Timeout)):
            raise ChatarminOSError(
                f"timeout must be seconds, an httpx.Timeout or None, got {timeout!r}"
            )
        return cls(
            api_key=api_key,
            base_url=url,
            timeout=timeout,
            max_retries=max_retries,
            transformer=transformer,
            default_headers=dict(default_headers or {}),
        )

    def changed(self, **changes: Any) -> ClientConfig:
        """A copy with the given fields re-resolved (unchanged ones kept as they are)."""
        values: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "transformer": self.transformer,
            "default_headers": self.default_headers,
        }
        for name, value in changes.items():
            if not isinstance(value, NotGiven):
                values[name] = value
        if "default_headers" in changes and not isinstance(changes["default_headers"], NotGiven):
            values["default_headers"] = {**self.default_headers, **changes["default_headers"]}
        return ClientConfig.create(**values)

    def headers(self) -> dict[str, str]:
        """The headers every request carries (caller's defaults first, then ours)."""
        return {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **self.default_headers,
            "Authorization": f"Bearer {self.api_key}",
        }


def should_retry(error: Exception, *, is_query: bool, was_sent: bool, idempotent: bool) -> bool:
    """Whether a failed attempt may be tried again (ignoring the retry budget).

    ``was_sent`` is false when the request certainly never reached the server.
    """
    if isinstance(error, APIConnectionError):
        return is_query or idempotent or not was_sent
    if isinstance(error, APIStatusError):
        if error.status_code not in RETRYABLE_STATUSES:
            return False
        return is_query or idempotent or error.status_code == 429
    return False


def _retry_after_seconds(headers: httpx.Headers | None, now: float) -> float | None:
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return float(raw_ms) / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    import email.utils  # only when a server sends an HTTP date

    parsed = email.utils.parsedate_to_datetime(raw) if raw.strip() else None
    if parsed is None:
        return None
    return parsed.timestamp() - now


def retry_delay(
    retries_taken: int,
    headers: httpx.Headers | None,
    *,
    now: Callable[[], float] = time.time,
    jitter: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``.

    A ``retry-after-ms`` / ``Retry-After`` header between 0 and 60 s wins; otherwise
    exponential backoff from 0.5 s, capped at 8 s, with up to 25 % jitter off.
    """
    try:
        after = _retry_after_seconds(headers, now())
    except (TypeError, ValueError, OverflowError):
        after = None
    if after is not None and 0 <= after <= MAX_RETRY_AFTER:
        return after
    delay = min(INITIAL_RETRY_DELAY * (2.0**retries_taken), MAX_RETRY_DELAY)
    if jitter is None:
        import random

        jitter = random.random
    return delay * (1 - 0.25 * jitter())
