"""Input schemas of the local ChatarminOS: a small strict validator, and the shared fields.

The local server is a test double: it checks inputs with its own schemas (never the SDK's
models), so a contract mistake on either side shows up as a refused call instead of hiding.

Checkers take ``(value, path)`` and return the cleaned value or raise :class:`Invalid`
carrying one ``(path, message)`` issue per problem. :class:`Obj` validates an object field by
field, rejects unknown keys and collects every issue it finds, so a message names each
offending field (``"quantity: must be an integer >= 1 (got 0)"``). Every string must be valid
Unicode: a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is refused, as SQLite cannot store it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NoReturn

from .._wire import ISO_8601_EXAMPLE, MAX_SAFE_INTEGER, format_datetime, parse_datetime

__all__ = [
    "ID",
    "LABEL",
    "OPTIONAL_ID",
    "Checker",
    "F",
    "Invalid",
    "Obj",
    "array",
    "boolean",
    "email",
    "enum",
    "ident",
    "integer",
    "json_object",
    "mapping",
    "number",
    "text",
    "timestamp",
]

Checker = Callable[[Any, str], Any]
"""A checker: ``(value, path) -> cleaned value``; raises :class:`Invalid`."""

MAX_ISSUES_SHOWN = 10
"""A validation message lists at most this many issues (then says how many more)."""

MAX_DEPTH = 32
"""How deeply a free-form JSON value (``metadata``, ``config``) may nest."""


class Invalid(Exception):
    """Input failed validation; ``issues`` lists ``(path, message)`` pairs."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        """Create the error from its issues (at least one)."""
        self.issues = issues
        shown = "; ".join(
            f"{path}: {message}" if path else message for path, message in issues[:MAX_ISSUES_SHOWN]
        )
        more = len(issues) - MAX_ISSUES_SHOWN
        super().__init__(shown + (f"; and {more} more" if more > 0 else ""))


def valid_unicode(value: str) -> bool:
    """Whether ``value`` can be stored and sent as UTF-8 (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(value: Any) -> str:
    """A short description of a value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 24 else text[:21] + "..."
    if isinstance(value, str):
        # ASCII escapes: a lone surrogate in the value cannot break the answer's encoding.
        text = json.dumps(value[:40], ensure_ascii=not valid_unicode(value))
        return text if len(value) <= 40 else text[:-1] + '..."'
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, datetime):
        return "a date" if value.tzinfo is not None else "a date without a timezone"
    return f"a {type(value).__name__}"


def fail(path: str, message: str, value: Any = ..., /) -> NoReturn:
    """Raise :class:`Invalid` for one field, adding ``(got …)`` when a value is given."""
    if value is not ...:
        message = f"{message} (got {_describe(value)})"
    raise Invalid([(path, message)])


def join(path: str, key: str) -> str:
    """The path of ``key`` inside the object at ``path``."""
    return f"{path}.{key}" if path else key


def _key(key: Any) -> str:
    """An object key as it may appear in a message."""
    text = str(key)
    if not valid_unicode(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class F:
    """One field of an :class:`Obj`: its checker, whether it is required, whether null is allowed."""

    check: Checker
    required: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Obj:
    """An object checker: known fields only, each validated; returns a dict of the fields given.

    Fields the caller left out are absent from the result (so ``"x" in result`` tells
    "not given" from "given as null"). ``rule`` is an optional cross-field check run when
    every field is valid; it returns ``(field, message)`` for a problem, or ``None``.
    ``optional`` makes the whole input optional: no input (or ``null``) is the empty object.
    """

    fields: Mapping[str, F]
    rule: Callable[[dict[str, Any]], tuple[str, str] | None] | None = field(default=None)
    optional: bool = False

    def __call__(self, value: Any, path: str) -> dict[str, Any]:
        """Validate ``value`` (found at ``path``; ``""`` for the whole input)."""
        if value is None and self.optional:
            value = {}
        if not isinstance(value, Mapping):
            fail(path or "input", "must be an object", value)
        fields = self.fields
        issues: list[tuple[str, str]] = []
        for key in value:
            if key not in fields:
                issues.append((join(path, _key(key)), "unknown field"))
        out: dict[str, Any] = {}
        for name, spec in fields.items():
            if name not in value:
                if spec.required:
                    issues.append((join(path, name), "required"))
                continue
            item = value[name]
            if item is None and spec.nullable:
                out[name] = None
                continue
            try:
                out[name] = spec.check(item, join(path, name))
            except Invalid as error:
                issues.extend(error.issues)
        if not issues and self.rule is not None:
            problem = self.rule(out)
            if problem is not None:
                issues.append((join(path, problem[0]), problem[1]))
        if issues:
            raise Invalid(issues)
        return out


def text(*, nonblank: bool = False, max_length: int = 10_000) -> Checker:
    """A string; ``nonblank`` refuses empty and whitespace-only strings."""
    wanted = "a non-empty string" if nonblank else "a string"

    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or (nonblank and not value.strip()):
            fail(path, f"must be {wanted}", value)
        if len(value) > max_length:
            fail(path, f"must be at most {max_length} characters long")
        if not valid_unicode(value):
            fail(path, "must be valid Unicode (it holds a lone surrogate)", value)
        return value

    return check


ident = text(nonblank=True, max_length=1000)
"""An id, code or name: a non-empty (not only whitespace) string."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.][^@\s]*")


def email(value: Any, path: str) -> str:
    """An email address (``local@domain.tld``, no whitespace)."""
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.fullmatch(value):
        fail(path, "must be an email address", value)
    if not valid_unicode(value):
        fail(path, "must be valid Unicode (it holds a lone surrogate)", value)
    return value


def boolean(value: Any, path: str) -> bool:
    """``true`` or ``false`` (not 0/1)."""
    if not isinstance(value, bool):
        fail(path, "must be a boolean", value)
    return value


def integer(minimum: int) -> Checker:
    """An integer (not a bool, not a float) between ``minimum`` and 2**53 - 1."""

    def check(value: Any, path: str) -> int:
        if type(value) is not int or value < minimum:
            fail(path, f"must be an integer >= {minimum}", value)
        if value > MAX_SAFE_INTEGER:
            fail(path, f"must be an integer <= {MAX_SAFE_INTEGER}", value)
        return value

    return check


def number(low: float, high: float) -> Checker:
    """A finite number (int or float, not bool) in ``[low, high]``."""

    def check(value: Any, path: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            fail(path, f"must be a number between {low:g} and {high:g}", value)
        return float(value)

    return check


def enum(*choices: Any) -> Checker:
    """One of ``choices`` (compared by value and type)."""
    listed = ", ".join(json.dumps(choice) for choice in choices)

    def check(value: Any, path: str) -> Any:
        for choice in choices:
            if type(value) is type(choice) and value == choice:
                return value
        fail(path, f"must be one of {listed}", value)

    return check


def array(item: Checker, *, min_items: int = 0, max_items: int = 100_000) -> Checker:
    """A list whose items all pass ``item``; its length within the bounds."""

    def check(value: Any, path: str) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            fail(path, "must be an array", value)
        if not min_items <= len(value) <= max_items:
            if min_items and max_items < 100_000:
                fail(path, f"must hold {min_items} to {max_items} items (got {len(value)})")
            if min_items:
                fail(path, f"must hold at least {min_items} items (got {len(value)})")
            fail(path, f"must hold at most {max_items} items (got {len(value)})")
        out: list[Any] = []
        issues: list[tuple[str, str]] = []
        for index, element in enumerate(value):
            try:
                out.append(item(element, f"{path}[{index}]"))
            except Invalid as error:
                issues.extend(error.issues)
        if issues:
            raise Invalid(issues)
        return out

    return check


def mapping(item: Checker) -> Checker:
    """An object with free-form (non-empty string) keys whose values all pass ``item``."""

    def check(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            fail(path, "must be an object", value)
        out: dict[str, Any] = {}
        issues: list[tuple[str, str]] = []
        for key, element in value.items():
            if not isinstance(key, str) or not key or not valid_unicode(key):
                issues.append((path, "keys must be non-empty strings of valid Unicode"))
                continue
            try:
                out[key] = item(element, join(path, key))
            except Invalid as error:
                issues.extend(error.issues)
        if issues:
            raise Invalid(issues)
        return out

    return check


def _json_value(value: Any, path: str, depth: int) -> Any:
    """A JSON value, copied; an aware datetime becomes its ISO-8601 UTC string."""
    if depth > MAX_DEPTH:
        fail(path, f"is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        if not valid_unicode(value):
            fail(path, "must be valid Unicode (it holds a lone surrogate)", value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            fail(path, "must be a finite number", value)
        return value
    if isinstance(value, datetime):
        return format_datetime(timestamp(value, path))
    if isinstance(value, (list, tuple)):
        return [
            _json_value(element, f"{path}[{index}]", depth + 1)
            for index, element in enumerate(value)
        ]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, element in value.items():
            if not isinstance(key, str) or not valid_unicode(key):
                fail(path, "keys must be strings of valid Unicode")
            out[key] = _json_value(element, join(path, key), depth + 1)
        return out
    fail(path, "must be a JSON value", value)


def json_object(value: Any, path: str) -> dict[str, Any]:
    """A free-form JSON object (``metadata``, ``config``, ``configValues``); keys untouched."""
    if not isinstance(value, Mapping):
        fail(path, "must be an object", value)
    result: dict[str, Any] = _json_value(value, path, 0)
    return result


_TS_HINT = f"must be an ISO-8601 timestamp with a UTC offset, e.g. {ISO_8601_EXAMPLE}"


def timestamp(value: Any, path: str) -> datetime:
    """A wire timestamp (the grammar of ``_wire.parse_datetime``) or an aware datetime → UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            fail(path, _TS_HINT, value)
        moment = value
    elif isinstance(value, str):
        try:
            moment = parse_datetime(value)
        except ValueError:
            fail(path, _TS_HINT, value)
    else:
        fail(path, _TS_HINT, value)
    try:
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        fail(path, "is out of range", value)


# -- fields several procedures share --------------------------------------------------------

ID = F(ident, required=True)
"""A required id or code (``companyId``, ``featureCode``, ``tierCode``, ...)."""

OPTIONAL_ID = F(ident)
"""An optional id or code."""

LABEL = F(text(max_length=1000))
"""An optional free-text label or name (may be empty)."""
