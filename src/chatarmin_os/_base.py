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

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._exceptions import APIConnectionError, APIStatusError, ConfigurationError
from ._types import NotGiven, Timeout, Transformer
from ._version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_RETRIES",
    "MAX_TIMEOUT",
    "ClientConfig",
    "product_key",
    "retry_after",
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


MAX_RETRIES = 1000
"""The most retries a client may be given (the backoff's ``2**retry`` overflows past 1023)."""

MAX_TIMEOUT = 1_000_000.0
"""The longest timeout accepted, in seconds (~11.6 days); for no timeout at all pass ``None``.

Beyond ~10**10 s the operating system's clock arithmetic overflows inside the socket layer.
"""

# RFC 9110 "token": the characters a header name may hold.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII, with single spaces or tabs between (no leading or trailing whitespace).
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20\x09]*[\x21-\x7e])*)?")


def _redact(key: str) -> str:
    return "<redacted>" if key else "<missing>"


class _Secret:
    """Holds the API key: its ``repr`` never shows it, and neither does ``vars()`` of anything
    holding it (the key sits in a closure, not in an attribute).

    A traceback printed with its frames' local variables shows ``repr`` of each; the key
    lives in this box (and the caller's argument is dropped) so such a traceback of a
    configuration error cannot contain it. A configuration keeps its key in one too.
    """

    __slots__ = ("_reveal",)

    def __init__(self, value: str) -> None:
        self._reveal: Callable[[], str] = lambda: value

    @property
    def value(self) -> str:
        """The key itself."""
        return self._reveal()

    def __repr__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def _api_key_problem(key: object, source: str) -> str | None:
    """What is wrong with an API key, in words that never quote it; ``None`` when fine."""
    if key is None or key == "":
        return (
            "No API key: pass api_key=... or set the OS_API_KEY environment variable "
            "(keys look like os_sk_..., from ChatarminOS → Settings → Developers)."
        )
    if not isinstance(key, str):
        return f"api_key must be a string, got {type(key).__name__}"
    if key != key.strip():
        return f"{source} has whitespace around it (a stray space or newline when copied?)"
    for position, char in enumerate(key):
        if char.isspace():
            what = f"whitespace (U+{ord(char):04X})"
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            what = f"a control character (U+{ord(char):04X})"
        elif not char.isascii():
            what = (
                f"a non-ASCII character (U+{ord(char):04X}; an invisible character such as "
                "a zero-width space copied with it?)"
            )
        else:
            continue
        return f"{source} contains {what} at position {position}; API keys are printable ASCII"
    return None


def _show(value: str, limit: int = 100) -> str:
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}…"


def _show_url(value: str) -> str:
    """A base URL for a message; not shown when it may hold credentials (``user:pw@``)."""
    return "(not shown: it contains '@')" if "@" in value else _show(value)


def _base_url(value: object) -> httpx.URL:
    """The base URL, checked, always ending in ``/`` so procedure paths join onto it."""
    source = "base_url"
    if value is None:
        value = os.environ.get("CHATARMIN_OS_BASE_URL") or None
        source = "CHATARMIN_OS_BASE_URL" if value is not None else "base_url"
        if value is None:
            value = DEFAULT_BASE_URL
    if isinstance(value, httpx.URL):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"base_url must be a string or an httpx.URL, got {type(value).__name__}"
        )
    if not value.strip():
        raise ConfigurationError(f"{source} is empty: give an http(s) URL or leave it out")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ConfigurationError(
            f"{source} contains whitespace or a control character: {_show_url(value)}"
        )
    try:
        url = httpx.URL(value)
        port = url.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ConfigurationError(f"{source} is not a valid URL ({_show(str(exc))})") from None
    if url.userinfo:
        # Credentials in the URL would be sent as Basic auth instead of the API key, and
        # show in every repr and log line: refused, and not quoted.
        raise ConfigurationError(
            f"{source} must not contain a user name or password (user:password@host): "
            "the API key goes in api_key / OS_API_KEY"
        )
    if url.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{source} must be an http:// or https:// URL, got {_show_url(value)}"
        )
    if not url.host:
        raise ConfigurationError(f"{source} has no host: {_show_url(value)}")
    if port is not None and not 0 < port < 65536:
        raise ConfigurationError(f"{source} has a port out of range: {port}")
    if url.query or "?" in value:
        raise ConfigurationError(
            f"{source} must not have a query string (?...): procedure paths and their "
            "input are added to it"
        )
    if url.fragment or "#" in value:
        raise ConfigurationError(f"{source} must not have a fragment (#...)")
    # "https://h" and "https://h/api/v1" both become ".../" so "tiers.list" joins right.
    path = url.raw_path if url.raw_path.endswith(b"/") else url.raw_path + b"/"
    joined = url.copy_with(raw_path=path)
    if not str(joined).endswith("/"):  # pragma: no cover - httpx always writes the path
        raise ConfigurationError(f"{source} cannot be joined with procedure paths")
    return joined


def _timeout(value: object) -> float | httpx.Timeout | None:
    if isinstance(value, NotGiven):
        return DEFAULT_TIMEOUT
    if value is None:
        return None
    httpx2 = sys.modules.get("httpx2")  # an httpx2.Timeout: httpx2 is imported already
    if httpx2 is not None and isinstance(value, httpx2.Timeout):
        value = httpx.Timeout(
            connect=value.connect, read=value.read, write=value.write, pool=value.pool
        )
    if isinstance(value, httpx.Timeout):
        for phase in ("connect", "read", "write", "pool"):
            seconds = getattr(value, phase)
            if seconds is not None:
                _timeout_seconds(seconds, f"timeout.{phase}")
        return value
    return _timeout_seconds(value, "timeout")


def _timeout_seconds(
    value: object, name: str, error: Callable[[str], Exception] = ConfigurationError
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(
            f"{name} must be seconds (a number), an httpx.Timeout or None, "
            f"got {type(value).__name__}"
        )
    if not 0 < value <= MAX_TIMEOUT:  # also refuses nan
        shown = repr(value) if isinstance(value, float) or abs(value) < 10**15 else "a huge int"
        raise error(
            f"{name} must be more than 0 and at most {MAX_TIMEOUT:,.0f} seconds, got {shown} "
            "(None means no timeout)"
        )
    return float(value)


def _default_headers(
    value: object,
    name: str = "default_headers",
    error: Callable[[str], Exception] = ConfigurationError,
) -> dict[str, str]:
    """The caller's extra headers, checked; values are never quoted (they may be secrets)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(f"{name} must be a dict of header name to value, got {type(value).__name__}")
    headers: dict[str, str] = {}
    for key, header_value in value.items():
        if not isinstance(key, str) or not _HEADER_NAME.fullmatch(key):
            shown = _show(key, 40) if isinstance(key, str) else f"a {type(key).__name__}"
            raise error(f"{name}: {shown} is not a valid HTTP header name")
        if key.lower() in _FRAMING_HEADERS:
            raise error(f"{name}: {key} is set by the SDK for each request")
        if not isinstance(header_value, str):
            raise error(
                f"{name}[{_show(key, 40)}] must be a string, got {type(header_value).__name__}"
            )
        if not _HEADER_VALUE.fullmatch(header_value):
            raise error(
                f"{name}[{_show(key, 40)}] must be printable ASCII without line breaks or "
                "surrounding whitespace (the value is not shown: it may be a secret)"
            )
        headers[key] = header_value
    return headers


_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client is configured with; ``with_options`` makes a changed copy.

    :meth:`create` checks every option and raises :class:`~chatarmin_os.ConfigurationError`
    for a bad one, so a misconfigured client fails when it is made, never on a call.
    """

    secret: _Secret = field(repr=False)
    """The API key, in a box whose ``repr`` hides it (:attr:`api_key` reads it)."""
    base_url: httpx.URL
    timeout: float | httpx.Timeout | None
    max_retries: int
    transformer: Transformer
    default_headers: Mapping[str, str]

    @property
    def api_key(self) -> str:
        """The API key (never in this object's ``repr`` or ``vars()``)."""
        return self.secret.value

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
        """Resolve arguments and environment (``OS_API_KEY``, ``CHATARMIN_OS_BASE_URL``).

        Refused, with a :class:`~chatarmin_os.ConfigurationError` whose message never
        contains the key: a missing key; a key that is not a string, has whitespace around
        or inside it, a control character or a non-ASCII character (from ``OS_API_KEY``
        too, and the message says so); a ``base_url`` that is not an absolute http(s) URL,
        has a user name or password, a query, a fragment or whitespace; a ``timeout`` that
        is not a number of seconds in (0, 1,000,000], an ``httpx.Timeout`` of such, or
        ``None``; ``max_retries`` that is not an ``int`` from 0 to 1000; ``default_headers`` with a
        name that is not an HTTP token or a value that is not printable ASCII.
        """
        source = "api_key"
        if api_key is None:
            api_key = os.environ.get("OS_API_KEY")
            source = "OS_API_KEY"
        key = _Secret(api_key) if isinstance(api_key, str) else None
        problem = _api_key_problem(api_key, source)
        api_key = None  # from here on only `key` holds it (see _Secret)
        if problem is not None or key is None:
            raise ConfigurationError(problem or "No API key")
        url = _base_url(base_url)
        if transformer not in ("json", "superjson"):
            shown = (
                _show(transformer, 40)
                if isinstance(transformer, str)
                else "a " + type(transformer).__name__
            )
            raise ConfigurationError(f"transformer must be 'json' or 'superjson', got {shown}")
        if (
            isinstance(max_retries, bool)
            or not isinstance(max_retries, int)
            or not 0 <= max_retries <= MAX_RETRIES
        ):
            shown = (
                str(max_retries)
                if type(max_retries) is int and abs(max_retries) < 10**15
                else type(max_retries).__name__
            )
            raise ConfigurationError(
                f"max_retries must be an int from 0 to {MAX_RETRIES}, got {shown}"
            )
        return cls(
            secret=key,
            base_url=url,
            timeout=_timeout(timeout),
            max_retries=max_retries,
            transformer=transformer,
            default_headers=_default_headers(default_headers),
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
        values.update({k: v for k, v in changes.items() if not isinstance(v, NotGiven)})
        new_headers = changes.get("default_headers")
        if new_headers is not None and not isinstance(new_headers, NotGiven):
            if not isinstance(new_headers, Mapping):
                values.clear()
                raise ConfigurationError(
                    "default_headers must be a dict of header name to value, "
                    f"got {type(new_headers).__name__}"
                )
            values["default_headers"] = {**self.default_headers, **new_headers}
        try:
            return ClientConfig.create(**values)
        except ConfigurationError:
            values.clear()  # no key left in this frame's locals (see _Secret)
            changes.clear()
            raise

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


def _retry_after_seconds(headers: Mapping[str, str] | None, now: float) -> float | None:
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


def product_key(base_url: str, api_key: str) -> str:
    """Which server and product a client talks to, as a short hash (the key is not kept):
    what names a cache's Redis keys and a usage spool's rows."""
    return hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:24]


def retry_after(
    headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """The wait a ``retry-after-ms`` / ``Retry-After`` header asks for, when it is usable
    (between 0 and 60 s); else ``None``."""
    try:
        after = _retry_after_seconds(headers, now())
    except (TypeError, ValueError, OverflowError):
        return None
    return after if after is not None and 0 <= after <= MAX_RETRY_AFTER else None


def retry_delay(
    retries_taken: int,
    headers: Mapping[str, str] | None,
    *,
    now: Callable[[], float] = time.time,
    jitter: Callable[[], float] | None = None,
    initial: float = INITIAL_RETRY_DELAY,
) -> float:
    """Seconds to wait before retry number ``retries_taken + 1``.

    A usable ``retry-after-ms`` / ``Retry-After`` header (:func:`retry_after`) wins;
    otherwise exponential backoff from ``initial`` (0.5 s), capped at 8 s, with up to 25 %
    jitter off.
    """
    after = retry_after(headers, now=now)
    if after is not None:
        return after
    delay = min(initial * (2.0 ** min(retries_taken, 64)), MAX_RETRY_DELAY)
    if jitter is None:
        import random

        jitter = random.random
    return delay * (1 - 0.25 * jitter())
