"""Checks on arguments, run before anything is sent.

Each failure raises :class:`~chatarmin_os.InvalidInputError` (a ``ValueError`` and a
``ChatarminOSError``) naming the argument and the problem; a refused value is quoted by a
short prefix at most, never whole. Conventions:

* an argument left out (``NOT_GIVEN``) is left out of the JSON;
* ``None`` for an optional argument is the same as leaving it out, except where ``null``
  means something on the wire (``quantity_limit``, ``included_quantity``, ``valid_until``:
  "unlimited" / "no expiry"), where it is sent as ``null``;
* timestamps take an aware ``datetime`` or an ISO-8601 string with an offset; a naive
  datetime is refused (it would silently mean the machine's local time), and so is one
  that falls outside years 1 to 9999 once converted to UTC;
* strings must be encodable as UTF-8 (a lone surrogate such as ``"\\ud800"`` is not);
* free-form maps (``metadata``, ``config``, per-feature overrides) hold JSON only, with
  string keys at every level, at most :data:`MAX_DEPTH` levels deep, without cycles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import pydantic

from ._exceptions import InvalidInputError
from ._ids import new_idempotency_key
from ._types import NOT_GIVEN, NotGiven
from ._wire import ISO_8601_EXAMPLE, MAX_SAFE_INTEGER, parse_datetime

__all__ = [
    "MAX_DEPTH",
    "MAX_URL_LENGTH",
    "check_url_length",
    "compact",
    "free_map",
    "model_input",
    "optional_bool",
    "optional_str",
    "positive_int",
    "require_str",
    "resolved_payload",
    "show",
    "timestamp",
    "unit_interval",
    "usage_payload",
]

MAX_DEPTH = 32
"""How deeply a free-form map may nest: the map itself is level 1, a dict or list in it 2, ...

Deeper (or circular) values are refused: no real metadata needs more, and a JavaScript
server or a log pipeline may choke on deeper JSON.
"""

MAX_URL_LENGTH = 65_536
"""The longest URL httpx sends (a longer one raises ``httpx.InvalidURL``)."""

_M = TypeVar("_M", bound=pydantic.BaseModel)

_QUOTE_CHARS = 40
_KEY_CHARS = 40
_SMALL_INT = 10**21


def show(value: Any) -> str:
    """A short, safe description of a refused value: never long, never raises.

    Strings are quoted by a prefix, numbers written out when short, anything else named
    by its type (its ``repr`` may be huge, or raise).
    """
    if isinstance(value, str):
        if len(value) <= _QUOTE_CHARS:
            return repr(value)
        return f"{value[:_QUOTE_CHARS]!r}… ({len(value)} characters)"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if -_SMALL_INT < value < _SMALL_INT:
            return str(int(value))
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return f"{'a negative' if value < 0 else 'an'} integer of about {digits} digits"
    if isinstance(value, float):
        return repr(float(value))
    return _a(_type_name(value))


def _key_label(key: str) -> str:
    """A dict key as it appears in an argument path: its first 40 characters at most."""
    return key if len(key) <= _KEY_CHARS else key[:_KEY_CHARS] + "…"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _type_name(value: Any) -> str:
    return type(value).__name__


def _text(name: str, value: str) -> str:
    """``value`` if it can be sent as UTF-8 (no lone surrogates), else refused."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                name,
                f"contains a lone surrogate (U+{ord(value[exc.start]):04X} at position "
                f"{exc.start}), which cannot be sent as UTF-8",
            ) from None
    return value


def require_str(name: str, value: Any) -> str:
    """A required, non-empty string (ids, codes, labels) that can be sent as UTF-8."""
    if not isinstance(value, str):
        raise InvalidInputError(name, f"must be a string, got {_type_name(value)}")
    if not value.strip():
        raise InvalidInputError(name, "must not be empty")
    return _text(name, value)


def optional_str(name: str, value: Any) -> str | NotGiven:
    """An optional non-empty string; ``None`` counts as not given."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    return require_str(name, value)


def optional_bool(name: str, value: Any) -> bool | NotGiven:
    """An optional bool; ``None`` counts as not given."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    if not isinstance(value, bool):
        raise InvalidInputError(name, f"must be a bool, got {_type_name(value)}")
    return value


def positive_int(name: str, value: Any) -> int:
    """An ``int`` from 1 to 2**53 - 1 (a bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(name, f"must be a positive integer, got {_type_name(value)}")
    if value < 1:
        raise InvalidInputError(name, f"must be a positive integer, got {show(value)}")
    if value > MAX_SAFE_INTEGER:
        raise InvalidInputError(name, f"must be at most 2**53 - 1, got {show(value)}")
    return int(value)


def nullable_int(name: str, value: Any) -> int | NotGiven | None:
    """An optional ``int`` >= 0 where ``None`` is sent as ``null``."""
    if value is None or isinstance(value, NotGiven):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(name, f"must be an integer or None, got {_type_name(value)}")
    if value < 0:
        raise InvalidInputError(name, f"must not be negative, got {show(value)}")
    if value > MAX_SAFE_INTEGER:
        raise InvalidInputError(name, f"must be at most 2**53 - 1, got {show(value)}")
    return int(value)


def unit_interval(name: str, value: Any) -> float | NotGiven:
    """An optional number from 0 to 1 (a ``float`` or an ``int``); ``None`` is not given."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(name, f"must be a number from 0 to 1, got {_type_name(value)}")
    if not 0 <= value <= 1:  # also refuses nan
        raise InvalidInputError(name, f"must be from 0 to 1, got {show(value)}")
    return value if isinstance(value, float) else int(value)


def timestamp(name: str, value: Any) -> datetime:
    """An aware ``datetime`` from a ``datetime`` or an ISO-8601 string with an offset.

    Refused: a naive datetime, a string that is no ISO-8601 timestamp with an offset, and
    a moment outside years 1 to 9999 in UTC (``datetime.max`` at ``-05:00``, say), which
    cannot be written as the UTC timestamp the API takes.
    """
    if isinstance(value, datetime):
        try:
            offset = value.utcoffset()
        except (ValueError, TypeError, OverflowError):
            raise InvalidInputError(
                name, "has a timezone whose UTC offset cannot be read"
            ) from None
        if offset is None:
            raise InvalidInputError(
                name,
                "naive datetime: give a timezone, e.g. datetime(2024, 1, 15, tzinfo=timezone.utc)",
            )
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value.strip())
        except (ValueError, TypeError, OverflowError):
            raise InvalidInputError(
                name,
                f"must be an ISO-8601 timestamp with a UTC offset, e.g. "
                f"{ISO_8601_EXAMPLE!r}, got {show(value)}",
            ) from None
    else:
        raise InvalidInputError(
            name, f"must be a datetime or an ISO-8601 string, got {_type_name(value)}"
        )
    try:
        moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise InvalidInputError(
            name, "is outside the years 1 to 9999 once converted to UTC"
        ) from None
    return moment


def optional_timestamp(name: str, value: Any) -> datetime | NotGiven:
    """An optional timestamp; ``None`` counts as not given."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    return timestamp(name, value)


def free_map(name: str, value: Any) -> dict[str, Any] | NotGiven:
    """A free-form JSON object (``metadata``, ``config``, overrides): keys pass through untouched.

    Returns a copy holding only JSON: ``str`` (UTF-8-encodable), ``int`` within
    JavaScript's safe range (±2**53 − 1; a larger one would silently lose precision on
    the server: send it as a string), finite ``float``, ``bool``, ``None``, ``dict`` with
    string keys, ``list`` / ``tuple``, aware ``datetime`` (sent as a timestamp) and
    ``date`` (sent as ``"YYYY-MM-DD"``). Refused, naming the path to the offending value:
    any other type, a non-string key at any level, a circular reference, and nesting
    deeper than :data:`MAX_DEPTH` (32) levels. ``None`` counts as not given.
    """
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    if not isinstance(value, Mapping):
        raise InvalidInputError(name, f"must be a dict, got {_type_name(value)}")
    result: dict[str, Any] = _json_value(name, value, 1, set())
    return result


def _json_value(path: str, value: Any, depth: int, open_ids: set[int]) -> Any:
    """A JSON-only copy of ``value`` (see :func:`free_map`); ``path`` names it in errors."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(path, value)
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InvalidInputError(
                path,
                f"{show(value)} is beyond ±2**53 - 1 and would lose precision on the server; "
                "send it as a string",
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(path, f"cannot be sent as JSON: {show(value)} is not finite")
        return value
    if isinstance(value, datetime):
        return timestamp(path, value)
    if isinstance(value, date):
        return value.isoformat()
    is_map = isinstance(value, Mapping)
    if not is_map and not isinstance(value, (list, tuple)):
        raise InvalidInputError(
            path, f"cannot be sent as JSON: {_a(_type_name(value))} is not a JSON value"
        )
    if depth > MAX_DEPTH:
        raise InvalidInputError(path, f"is nested deeper than {MAX_DEPTH} levels")
    if id(value) in open_ids:
        raise InvalidInputError(path, "contains itself (a circular reference)")
    open_ids.add(id(value))
    try:
        if is_map:
            copy: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInputError(
                        path, f"keys must be strings, got a key of type {_type_name(key)}"
                    )
                key_path = f"{path}.{_key_label(key)}"
                copy[_text(key_path, key)] = _json_value(key_path, item, depth + 1, open_ids)
            return copy
        return [
            _json_value(f"{path}[{i}]", item, depth + 1, open_ids) for i, item in enumerate(value)
        ]
    finally:
        open_ids.discard(id(value))


def model_input(name: str, model: type[_M], value: Any) -> _M:
    """A nested input given as the SDK's model or a dict (snake_case or camelCase keys)."""
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            name, f"must be a dict or {model.__name__}, got {_type_name(value)}"
        )
    try:
        return model.model_validate(dict(value))
    except pydantic.ValidationError as exc:
        raise _input_error(name, exc) from None


def _input_error(name: str, exc: pydantic.ValidationError) -> InvalidInputError:
    """The first problem pydantic found, as an :class:`InvalidInputError` naming its place."""
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InvalidInputError):  # raised by one of our validators (metadata)
        return InvalidInputError(f"{name}.{cause.argument}", cause.problem)
    where = "".join(
        f"[{part}]" if isinstance(part, int) else f".{_key_label(str(part))}"
        for part in first["loc"]
    )
    kind = first["type"]
    if kind == "string_pattern_mismatch":
        problem = "must not be blank"
    elif kind == "string_unicode":
        problem = "contains a lone surrogate, which cannot be sent as UTF-8"
    else:
        problem = first["msg"]
    return InvalidInputError(name + where, problem)


def model_list(
    name: str, model: type[_M], value: Any, *, min_items: int, max_items: int
) -> list[_M]:
    """A list of nested inputs, with a size range."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInputError(name, f"must be a list, got {_type_name(value)}")
    if not min_items <= len(value) <= max_items:
        raise InvalidInputError(
            name, f"must hold {min_items} to {max_items} items, got {len(value)}"
        )
    return [model_input(f"{name}[{i}]", model, item) for i, item in enumerate(value)]


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that were given (``NOT_GIVEN`` dropped), in order."""
    return {key: value for key, value in fields.items() if not isinstance(value, NotGiven)}


def check_url_length(length: int, *, limit: int = MAX_URL_LENGTH) -> None:
    """Refuse a query whose URL (``?input=`` included) of ``length`` characters is longer
    than httpx sends (the caller adds the parts up: no URL is built to be measured).

    Raises :class:`InvalidInputError` for ``input``, naming the size and the limit.
    """
    if length > limit:
        raise InvalidInputError(
            "input",
            f"the query's URL is {length} bytes, over the limit of {limit}: send less "
            "(a query carries its input in the URL)",
        )


def _given(value: object) -> bool:
    return value is not None and not isinstance(value, NotGiven)


def usage_payload(
    *,
    company_id: Any = NOT_GIVEN,
    external_org_id: Any = NOT_GIVEN,
    feature_code: Any,
    quantity: Any,
    idempotency_key: Any = NOT_GIVEN,
    metadata: Any = NOT_GIVEN,
) -> dict[str, Any]:
    """The checked input of one ``billing.trackUsage`` call, its idempotency key fixed.

    Exactly one of ``company_id`` / ``external_org_id`` (the latter becomes
    ``externalOrgId``, resolved to a company before sending). The key is the caller's, or a
    fresh UUIDv7. Raises :class:`~chatarmin_os.InvalidInputError` for bad input.
    """
    key = optional_str("idempotency_key", idempotency_key)
    if _given(external_org_id) == _given(company_id):
        raise InvalidInputError("company_id", "give exactly one of company_id and external_org_id")
    if _given(external_org_id):
        target = {"externalOrgId": require_str("external_org_id", external_org_id)}
    else:
        target = {"companyId": require_str("company_id", company_id)}
    return compact(
        {
            **target,
            "featureCode": require_str("feature_code", feature_code),
            "quantity": positive_int("quantity", quantity),
            "idempotencyKey": new_idempotency_key() if isinstance(key, NotGiven) else key,
            "metadata": free_map("metadata", metadata),
        }
    )


def resolved_payload(payload: dict[str, Any], company_id: str) -> dict[str, Any]:
    """``payload`` with ``externalOrgId`` replaced by the company it resolved to."""
    return {"companyId": company_id, **{k: v for k, v in payload.items() if k != "externalOrgId"}}
