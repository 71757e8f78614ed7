"""Per-call options (``extra_headers=``, ``extra_query=``, ``timeout=``): checked once, then
applied to the one request that carries the call.

A call with options is sent on its own (never in a batch, never joining an identical query
in flight), so its options reach its request only. The checks run before anything is sent
and raise :class:`~chatarmin_os.InvalidInputError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._base import _default_headers, _timeout_seconds
from .._exceptions import InvalidInputError
from .._types import NotGiven, RequestOptions, Timeout

__all__ = ["CallOptions", "call_options", "request_options"]

_KNOWN = frozenset({"extra_headers", "extra_query", "timeout"})
_RESERVED_QUERY = frozenset({"input", "batch"})  # tRPC's own parameters
_NOT_SET: Any = object()


def _refused(message: str) -> InvalidInputError:
    argument, _, problem = message.partition(" ")
    return InvalidInputError(argument.rstrip(":"), problem)


class CallOptions:
    """The checked options of one call: headers to add, query text to append, timeout."""

    __slots__ = ("extensions", "headers", "query")

    def __init__(
        self, headers: dict[str, str], query: str, extensions: dict[str, Any] | None
    ) -> None:
        self.headers = headers
        self.query = query
        self.extensions = extensions  # None: the client's timeout

    def apply(self, headers: httpx.Headers, target: str) -> tuple[httpx.Headers, str]:
        """The request's headers and target with these options on top (copies)."""
        if self.headers:
            headers = headers.copy()
            headers.update(self.headers)
        if self.query:
            target += ("&" if "?" in target else "?") + self.query
        return headers, target


def _headers(value: object) -> dict[str, str]:
    if isinstance(value, NotGiven):
        return {}
    headers = _default_headers(value, "extra_headers", _refused)
    for name in headers:
        if name.lower() == "authorization":
            raise InvalidInputError(
                "extra_headers", "may not set Authorization (pass api_key= to the client)"
            )
    return headers


def _query(value: object) -> str:
    if value is None or isinstance(value, NotGiven):
        return ""
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            "extra_query", f"must be a dict of name to value, got {type(value).__name__}"
        )
    params: list[tuple[str, str | int | float | bool | None]] = []
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError("extra_query", "names must be non-empty strings")
        if name in _RESERVED_QUERY:
            raise InvalidInputError("extra_query", f"{name!r} is set by the SDK")
        if not isinstance(item, (str, int, float)):
            raise InvalidInputError(
                f"extra_query[{name[:40]!r}]",
                f"must be a string, number or bool, got {type(item).__name__}",
            )
        params.append((name, item))
    try:
        return str(httpx.QueryParams(params))
    except (UnicodeError, ValueError):  # a lone surrogate; an int too long to write out
        raise InvalidInputError(
            "extra_query", "names and values must be text without lone surrogates, short numbers"
        ) from None


def _timeout(value: object) -> dict[str, Any] | None:
    if value is _NOT_SET or isinstance(value, NotGiven):
        return None
    if value is None:
        return {"timeout": httpx.Timeout(None).as_dict()}
    if isinstance(value, httpx.Timeout):
        for phase in ("connect", "read", "write", "pool"):
            seconds = getattr(value, phase)
            if seconds is not None:
                _timeout_seconds(seconds, f"timeout.{phase}", _refused)
        return {"timeout": value.as_dict()}
    seconds = _timeout_seconds(value, "timeout", _refused)
    return {"timeout": httpx.Timeout(seconds).as_dict()}


def call_options(options: Mapping[str, Any] | None) -> CallOptions | None:
    """The checked options of a call, or ``None`` when it has none (the common case)."""
    if not options:
        return None
    unknown = set(options) - _KNOWN
    if unknown:
        raise InvalidInputError(sorted(unknown)[0], "is not an option of this method")
    headers = _headers(options.get("extra_headers"))
    query = _query(options.get("extra_query"))
    extensions = _timeout(options.get("timeout", _NOT_SET))
    if not headers and not query and extensions is None:
        return None
    return CallOptions(headers, query, extensions)


def request_options(
    extra_headers: Mapping[str, str] | None,
    extra_query: Mapping[str, object] | None,
    timeout: Timeout | NotGiven,
) -> RequestOptions | None:
    """A method's per-call arguments as the mapping ``_call`` takes (``None``: none given;
    ``NOT_GIVEN`` counts as not given, as for every argument)."""
    if (
        (extra_headers is None or isinstance(extra_headers, NotGiven))
        and (extra_query is None or isinstance(extra_query, NotGiven))
        and isinstance(timeout, NotGiven)
    ):
        return None
    return {"extra_headers": extra_headers, "extra_query": extra_query, "timeout": timeout}
