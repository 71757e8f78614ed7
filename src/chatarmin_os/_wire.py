"""The tRPC v11 HTTP wire format: request encoding, envelopes, superjson.

Used by both clients (and, server side, by the local ChatarminOS), so the two ends can
never drift apart. Nothing here does I/O.

* A query is ``GET {base}/{path}?input=<encodeURIComponent(JSON)>``, no ``input`` when the
  procedure takes none; a mutation is ``POST {base}/{path}`` with a JSON body.
* Success is ``{"result": {"data": OUTPUT}}``; failure is
  ``{"error": {"message", "code", "data": {"code", "httpStatus", "path"}}}``.
* With the superjson transformer every input and output is wrapped as
  ``{"json": VALUE, "meta": {"values": {"a.b": ["Date"]}, "v": 1}}``, errors too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, get_args
from urllib.parse import quote

from ._types import Transformer

__all__ = [
    "FEATURE_SOURCES",
    "ISO_8601_EXAMPLE",
    "MAX_BULK_CONTACTS",
    "MAX_INT_DIGITS",
    "MAX_SAFE_INTEGER",
    "TRPC_CODE_NUMBER",
    "TRPC_CODE_STATUS",
    "EncodedRequest",
    "FeatureSource",
    "Kind",
    "batch_input",
    "batch_query_length",
    "batch_query_length_of",
    "dumps",
    "dumps_plain",
    "encode_batch",
    "encode_call",
    "encode_input",
    "encode_request",
    "encode_uri_component",
    "format_datetime",
    "is_superjson_shaped",
    "item_query_length",
    "parse_datetime",
    "superjson_deserialize",
    "superjson_serialize",
]

Kind = Literal["query", "mutation"]

# tRPC v11 codes and the HTTP status @trpc/server gives each.
TRPC_CODE_STATUS: dict[str, int] = {
    "PARSE_ERROR": 400,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "PAYMENT_REQUIRED": 402,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_SUPPORTED": 405,
    "TIMEOUT": 408,
    "CONFLICT": 409,
    "PRECONDITION_FAILED": 412,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "UNPROCESSABLE_CONTENT": 422,
    "PRECONDITION_REQUIRED": 428,
    "TOO_MANY_REQUESTS": 429,
    "CLIENT_CLOSED_REQUEST": 499,
    "INTERNAL_SERVER_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "BAD_GATEWAY": 502,
    "SERVICE_UNAVAILABLE": 503,
    "GATEWAY_TIMEOUT": 504,
}

# The JSON-RPC number @trpc/server puts in `error.code` for each tRPC code.
TRPC_CODE_NUMBER: dict[str, int] = {
    "PARSE_ERROR": -32700,
    "BAD_REQUEST": -32600,
    "UNAUTHORIZED": -32001,
    "PAYMENT_REQUIRED": -32002,
    "FORBIDDEN": -32003,
    "NOT_FOUND": -32004,
    "METHOD_NOT_SUPPORTED": -32005,
    "TIMEOUT": -32008,
    "CONFLICT": -32009,
    "PRECONDITION_FAILED": -32012,
    "PAYLOAD_TOO_LARGE": -32013,
    "UNSUPPORTED_MEDIA_TYPE": -32015,
    "UNPROCESSABLE_CONTENT": -32022,
    "PRECONDITION_REQUIRED": -32028,
    "TOO_MANY_REQUESTS": -32029,
    "CLIENT_CLOSED_REQUEST": -32099,
    "INTERNAL_SERVER_ERROR": -32603,
    "NOT_IMPLEMENTED": -32603,
    "BAD_GATEWAY": -32603,
    "SERVICE_UNAVAILABLE": -32603,
    "GATEWAY_TIMEOUT": -32603,
}

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JavaScript server reads exactly (``Number.MAX_SAFE_INTEGER``)."""

MAX_BULK_CONTACTS = 1000
"""The most contacts one ``contacts.bulkUpsert`` call takes."""

FeatureSource = Literal["subscription", "manual", "trial", "api"]
"""Where a company's access to a feature came from (``source``)."""

FEATURE_SOURCES: tuple[str, ...] = get_args(FeatureSource)
"""The values of :data:`FeatureSource`, for checks at run time."""


def is_superjson_shaped(value: Any) -> bool:
    """Whether ``value`` looks like a superjson envelope: ``{"json": ...}`` plus ``meta`` at most."""
    return isinstance(value, Mapping) and "json" in value and set(value) <= {"json", "meta"}


def format_datetime(value: datetime) -> str:
    """An aware datetime as JavaScript's ``Date.prototype.toISOString`` writes it.

    UTC, millisecond precision, ``Z`` suffix: ``2024-01-15T10:30:00.000Z``.
    """
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("naive datetime: give a timezone (e.g. datetime.now(timezone.utc))")
    utc = value.astimezone(timezone.utc)
    # Not strftime: "%Y" does not zero-pad years before 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond // 1000:03d}Z"
    )


ISO_8601_EXAMPLE = "2024-01-15T10:30:00.000Z"
"""A timestamp as the wire carries it (what ``format_datetime`` writes)."""

# The one timestamp grammar of the wire, for both ends: what @trpc/server's zod
# `z.iso.datetime({ offset: true })` accepts (RFC 3339): a date, `T`, hours, minutes and
# seconds, an optional fraction, and `Z` or an offset `±hh:mm`. No lower-case `t`/`z`, no
# space, no `+0100`, no `10:30Z`: a real server refuses those, so neither end takes them.
_ISO_8601 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_datetime(value: str) -> datetime:
    """Parse a wire timestamp (``2024-01-15T10:30:00.000Z``, ``…T11:30:00+01:00``).

    Seconds and a UTC offset are required; fractions beyond microseconds are cut. Returns
    an aware datetime in the given offset. Raises ``ValueError`` for anything else,
    including dates that do not exist (``2023-02-29``) and out-of-range fields.
    """
    match = _ISO_8601.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an ISO-8601 timestamp with a UTC offset, e.g. {ISO_8601_EXAMPLE}")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        zone = timezone.utc
    else:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError(f"UTC offset out of range: {sign}{off_h}:{off_m}")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        zone = timezone(-offset if sign == "-" else offset)
    micro = int((fraction or "")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone
        )
    except ValueError as error:  # February 30th, hour 24, second 60, year 0, ...
        raise ValueError(f"not a valid date and time: {error}") from None


def dumps(value: Any) -> str:
    """Compact JSON, as ``JSON.stringify`` writes it (no spaces, non-ASCII kept)."""
    return _DUMPS.encode(value)


def dumps_plain(value: Any) -> str:
    """:func:`dumps`, with datetimes written as ISO-8601 UTC strings (and dates as ISO dates,
    other mappings as objects), as a JSON server answers them."""
    return _PLAIN_ENCODER.encode(value)


# Made once: json.dumps with options builds an encoder on every call.
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_URI_SAFE = "-_.!~*'()"
# ASCII characters encodeURIComponent escapes, each to its %XX (one str.translate pass).
_ASCII_ESCAPES = {
    code: f"%{code:02X}"
    for code in range(128)
    if not chr(code).isalnum() and chr(code) not in _URI_SAFE
}


def encode_uri_component(text: str) -> str:
    """Percent-encode ``text`` exactly as JavaScript's ``encodeURIComponent`` does."""
    if text.isascii():
        return text.translate(_ASCII_ESCAPES)
    return quote(text, safe=_URI_SAFE)


def _escape_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


def _split_path(path: str) -> list[str]:
    if "\\" not in path:
        return path.split(".")
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path):
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def superjson_serialize(value: Any) -> dict[str, Any]:
    """Wrap a value as superjson does: ``{"json": ..., "meta": {"values": ..., "v": 1}}``.

    Datetimes become ISO strings annotated ``["Date"]`` at their dotted path (keys with a
    dot are escaped as superjson escapes them); a datetime at the root is annotated
    ``["Date"]`` directly. ``meta`` is left out when nothing needs annotating.
    """
    annotations: dict[str, list[str]] = {}

    def walk(item: Any, path: list[str]) -> Any:
        if isinstance(item, datetime):
            annotations[".".join(path)] = ["Date"]
            return format_datetime(item)
        if isinstance(item, Mapping):
            return {str(k): walk(v, [*path, _escape_key(str(k))]) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v, [*path, str(i)]) for i, v in enumerate(item)]
        return item

    json_value = walk(value, [])
    result: dict[str, Any] = {"json": json_value}
    if annotations:
        root = annotations.pop("", None)
        values: Any = root if root is not None else annotations
        result["meta"] = {"values": values, "v": 1}
    return result


_UNDEFINED = object()

MAX_INT_DIGITS = 4300
"""The most digits of an integer read from an answer (a JSON number or a superjson
``bigint``): Python 3.11's own limit for ``int(str)``; 3.10 has none and parses in O(n²)."""


def _kind(annotation: Any) -> Any:
    return annotation[0] if isinstance(annotation, list) and annotation else annotation


def _apply_annotation(value: Any, annotation: Any) -> Any:
    kind = _kind(annotation)
    if kind == "undefined":
        return _UNDEFINED
    if kind not in ("Date", "bigint", "number"):
        return value  # a kind this API never sends (set, map, custom, ...): as sent
    if not isinstance(value, str):
        raise ValueError(f"a superjson {kind} annotation on a {type(value).__name__}")
    if kind == "Date":
        return parse_datetime(value)
    if kind == "bigint":
        if len(value) > MAX_INT_DIGITS:
            raise ValueError(f"a superjson bigint of {len(value)} digits")
        return int(value)
    return float(value)  # "NaN", "Infinity", "-Infinity"


def superjson_deserialize(payload: Any) -> Any:
    """Unwrap a superjson payload, applying its ``Date``/``undefined``/``bigint`` annotations.

    Keys annotated ``undefined`` are dropped from their object (``None`` inside a list or at
    the root). Annotations of kinds this API never sends (``set``, ``map``, ``custom``, ...)
    leave the value as sent. Whatever the payload, the only error is ``ValueError``: for a
    payload that is not superjson-shaped (no ``json`` key) and for a ``meta`` that does not
    fit its value (a path that leads nowhere, a ``Date`` that is no ISO-8601 string, ...).
    """
    if not isinstance(payload, Mapping) or "json" not in payload:
        raise ValueError("not a superjson payload: expected an object with a 'json' key")
    value = payload["json"]
    meta = payload.get("meta")
    values = meta.get("values") if isinstance(meta, Mapping) else None
    if values is None:
        return value
    try:
        if isinstance(values, list):  # the root itself is annotated
            result = _apply_annotation(value, values)
            return None if result is _UNDEFINED else result
        if not isinstance(values, Mapping):
            raise ValueError("a superjson meta whose values are neither an object nor a list")
        for dotted, annotation in values.items():
            _annotate_at(value, dotted, annotation)
    except ValueError:
        raise
    except (TypeError, LookupError, ArithmeticError, RecursionError) as exc:
        raise ValueError(f"a superjson meta that does not fit its value ({exc})") from exc
    return value


def _annotate_at(value: Any, dotted: str, annotation: Any) -> None:
    """Apply one annotation at its dotted path in ``value``, in place."""
    parts = _split_path(dotted)
    parent: Any = None
    key: Any = None
    node = value
    for i, part in enumerate(parts):
        if isinstance(node, list):
            if not (part.isascii() and part.isdigit() and len(part) <= 18):
                raise ValueError("a superjson meta path that indexes a list with a non-number")
            key = int(part)
            if key >= len(node):
                raise ValueError("a superjson meta path past the end of a list")
        elif isinstance(node, dict):
            key = part
            if key not in node:
                if i == len(parts) - 1 and _kind(annotation) == "undefined":
                    return  # undefined, and already left out
                raise ValueError("a superjson meta path to a key that is not there")
        else:
            raise ValueError("a superjson meta path into a value that is no object or list")
        parent = node
        node = node[key]
    new = _apply_annotation(node, annotation)
    if new is _UNDEFINED:
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = None
    else:
        parent[key] = new


@dataclass(frozen=True)
class EncodedRequest:
    """An encoded procedure call: HTTP method, URL relative to the base URL, body."""

    method: Literal["GET", "POST"]
    url: str
    content: bytes | None


def _plain_default(value: Any) -> Any:
    """What :data:`_PLAIN_ENCODER` makes of what JSON has no type for: datetimes as ISO-8601
    strings (UTC, ``Z``), dates as ISO dates, other mappings as objects."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Plain-JSON inputs encoded in one pass: datetimes and other mappings are met as the encoder
# walks (no copy of the input made first), lists and tuples are JSON arrays already.
_PLAIN_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain_default
)


def encode_input(input: Any, *, transformer: Transformer) -> str:
    """The JSON text one call sends as its input (superjson: wrapped on its own).

    Raises ``TypeError`` or ``ValueError`` for input that cannot be encoded, like
    :func:`encode_request`.
    """
    try:
        if transformer != "superjson":
            return _PLAIN_ENCODER.encode(input)
        return dumps(superjson_serialize(input))
    except (RecursionError, OverflowError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from exc


def batch_input(values: Sequence[str | None]) -> str:
    """The input object of a batch, ``{"0": ..., "1": ...}``, from each call's JSON text.

    ``None`` is a call without input: its key is left out (``undefined`` to the server).
    """
    return "{" + ",".join(f'"{i}":{v}' for i, v in enumerate(values) if v is not None) + "}"


def batch_query_length(quoted: Sequence[str | None]) -> int:
    """``len(encode_uri_component(batch_input(values)))``, from each value's quoted length.

    encodeURIComponent works character by character, so the parts' lengths add up: the
    braces and commas quote to 3 characters each, ``"i":`` to ``9 + len(str(i))``.
    """
    items = [item_query_length(i, q) for i, q in enumerate(quoted) if q is not None]
    return batch_query_length_of(sum(items), len(items))


def item_query_length(index: int, quoted: str) -> int:
    """What the input of call ``index``, already quoted, adds to a batch's quoted input:
    ``"i":`` quotes to ``9 + len(str(i))`` characters."""
    return 9 + len(str(index)) + len(quoted)


def batch_query_length_of(items: int, count: int) -> int:
    """A batch's quoted input length from its ``count`` items' :func:`item_query_length`
    total: the braces and the commas between items quote to 3 characters each."""
    return 6 + items + 3 * max(0, count - 1)


def encode_batch(kind: Kind, paths: Sequence[str], values: Sequence[str | None]) -> EncodedRequest:
    """Encode a tRPC batch: ``{p0},{p1}?batch=1``, the inputs keyed ``"0"``, ``"1"``, ...

    ``values`` are each call's input as :func:`encode_input` made it (``None``: no input).
    A query batch carries them in the URL, a mutation batch in the body.
    """
    target = ",".join(paths) + "?batch=1"
    body = batch_input(values)
    if kind == "query":
        return EncodedRequest("GET", f"{target}&input={encode_uri_component(body)}", None)
    return EncodedRequest("POST", target, body.encode("utf-8"))


def encode_request(
    kind: Kind, path: str, input: Any, *, transformer: Transformer, has_input: bool = True
) -> EncodedRequest:
    """Encode one procedure call from its input (what a client does, in one function).

    ``has_input=False`` is a procedure that takes no input: plain JSON sends no ``input``
    parameter at all; superjson sends the encoded ``undefined``, as ``@trpc/client`` does.
    Input that cannot be encoded (not JSON, circular, too deep, a timestamp out of range, a
    string that is not UTF-8) raises ``TypeError`` or ``ValueError``, nothing else.
    """
    value = encode_input(input, transformer=transformer) if has_input else None
    quoted = encode_uri_component(value) if kind == "query" and value is not None else None
    return encode_call(kind, path, value, quoted, transformer=transformer)


def encode_call(
    kind: Kind, path: str, value: str | None, quoted: str | None, *, transformer: Transformer
) -> EncodedRequest:
    """Encode one call whose input is encoded already: ``value`` from :func:`encode_input`
    (``None``: the procedure takes none), ``quoted`` its :func:`encode_uri_component` (for
    a query)."""
    if kind == "query":
        if quoted is None and transformer == "superjson":
            quoted = _QUOTED_UNDEFINED  # what @trpc/client sends for "no input"
        return EncodedRequest("GET", path if quoted is None else f"{path}?input={quoted}", None)
    if value is None:
        value = encode_input(None, transformer=transformer)
    return EncodedRequest("POST", path, value.encode("utf-8"))


_QUOTED_UNDEFINED = encode_uri_component('{"json":null,"meta":{"values":["undefined"],"v":1}}')
