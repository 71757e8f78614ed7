"""Checks on arguments, run before anything is sent.

Each failure raises :class:`~chatarmin_os.InvalidInputError` (a ``ValueError`` and a
``ChatarminOSError``) naming the argument and the problem. Conventions:

* an argument left out (``NOT_GIVEN``) is left out of the JSON;
* ``None`` for an optional argument is the same as leaving it out, except where ``null``
  means something on the wire (``quantity_limit``, ``included_quantity``, ``valid_until``:
  "unlimited" / "no expiry"), where it is sent as ``null``;
* timestamps take an aware ``datetime`` or an ISO-8601 string with an offset; a naive
  datetime is refused (it would silently mean the machine's local time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from ._exceptions import InvalidInputError
from ._types import NOT_GIVEN, NotGiven
from ._wire import ISO_8601_EXAMPLE, MAX_SAFE_INTEGER, dumps, parse_datetime, to_plain_json

__all__ = [
    "compact",
    "free_map",
    "model_input",
    "optional_bool",
    "optional_str",
    "positive_int",
    "require_str",
    "timestamp",
]

_M = TypeVar("_M", bound=pydantic.BaseModel)


def _type_name(value: Any) -> str:
    return type(value).__name__


def require_str(name: str, value: Any) -> str:
    """A required, non-empty string (ids, codes, labels)."""
    if not isinstance(value, str):
        raise InvalidInputError(name, f"must be a string, got {_type_name(value)}")
    if not value.strip():
        raise InvalidInputError(name, "must not be empty")
    return value


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
        raise InvalidInputError(name, f"must be a positive integer, got {value}")
    if value > MAX_SAFE_INTEGER:
        raise InvalidInputError(name, f"must be at most 2**53 - 1, got {value}")
    return value


def nullable_int(name: str, value: Any) -> int | NotGiven | None:
    """An optional ``int`` >= 0 where ``None`` is sent as ``null``."""
    if value is None or isinstance(value, NotGiven):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(name, f"must be an integer or None, got {_type_name(value)}")
    if value < 0:
        raise InvalidInputError(name, f"must not be negative, got {value}")
    if value > MAX_SAFE_INTEGER:
        raise InvalidInputError(name, f"must be at most 2**53 - 1, got {value}")
    return value


def timestamp(name: str, value: Any) -> datetime:
    """An aware ``datetime`` from a ``datetime`` or an ISO-8601 string with an offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise InvalidInputError(
                name,
                "naive datetime: give a timezone, e.g. datetime(2024, 1, 15, tzinfo=timezone.utc)",
            )
        return value
    if isinstance(value, str):
        try:
            return parse_datetime(value.strip())
        except ValueError:
            raise InvalidInputError(
                name,
                f"must be an ISO-8601 timestamp with a UTC offset, e.g. "
                f"{ISO_8601_EXAMPLE!r}, got {value!r}",
            ) from None
    raise InvalidInputError(
        name, f"must be a datetime or an ISO-8601 string, got {_type_name(value)}"
    )


def optional_timestamp(name: str, value: Any) -> datetime | NotGiven:
    """An optional timestamp; ``None`` counts as not given."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    return timestamp(name, value)


def free_map(name: str, value: Any) -> dict[str, Any] | NotGiven:
    """A free-form JSON object (``metadata``, ``config``): keys pass through untouched."""
    if value is None or isinstance(value, NotGiven):
        return NOT_GIVEN
    if not isinstance(value, Mapping):
        raise InvalidInputError(name, f"must be a dict, got {_type_name(value)}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidInputError(name, f"keys must be strings, got {key!r}")
    try:
        dumps(to_plain_json(value))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(name, f"cannot be sent as JSON: {exc}") from None
    return dict(value)


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
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        problem = (
            "must not be blank" if first["type"] == "string_pattern_mismatch" else first["msg"]
        )
        raise InvalidInputError(f"{name}.{where}" if where else name, problem) from None


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
