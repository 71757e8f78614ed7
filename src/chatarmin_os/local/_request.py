"""Reading a tRPC request as ``@trpc/server`` does: its procedure paths, batch flag and input.

Shared by the handler (``protocol.TRPCHandler``) and the fault injector of
``chatarmin_os.testing``, so both see the same paths in the same request. Nothing here runs a
procedure; a request that cannot be read raises :class:`Refused` with the tRPC error to send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote_plus, unquote_to_bytes

from .._wire import is_superjson_shaped

__all__ = [
    "Inputs",
    "Refused",
    "Target",
    "body_text",
    "input_is_superjson",
    "read_inputs",
    "read_target",
    "shown",
]

_BOM = "\ufeff"
_ASCII_SPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() strips


class Refused(Exception):
    """The whole request is refused before any procedure runs: ``code`` and ``message``."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def refuse(code: str, message: str, path: str | None = None) -> NoReturn:
    """Raise :class:`Refused`."""
    raise Refused(code, message, path)


def shown(text: str, limit: int = 200) -> str:
    """A piece of the request echoed in a message: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Target:
    """What the request line says: the procedure path(s) and the raw ``?input=``."""

    paths: list[str]
    """One path, or the paths of a batch (``?batch=1``) in order."""
    batch: bool
    raw_input: str | None
    """The ``input`` query parameter, decoded (``None`` when absent)."""


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _decode_path(raw: str) -> str:
    """``decodeURIComponent``: percent-escapes decoded as UTF-8, strictly (else ``ValueError``)."""
    if "%" not in raw:
        return raw
    data = raw.encode("latin-1")
    if _BAD_ESCAPE.search(data):
        raise ValueError("malformed percent-escape")
    return unquote_to_bytes(data).decode("utf-8")  # UnicodeDecodeError is a ValueError


def _query_params(query: str) -> tuple[str | None, bool]:
    """(``input`` or ``None``, ``batch=1``) of a query string, read as URLSearchParams does."""
    input_value: str | None = None
    batch: str | None = None
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if name != "input" and name != "batch":
            name = unquote_plus(name)
        if name == "input" and input_value is None:
            input_value = unquote_plus(value)  # invalid UTF-8 becomes U+FFFD, as in Node
        elif name == "batch" and batch is None:
            batch = unquote_plus(value)
    return input_value, batch == "1"


def read_target(prefix: str, raw_path: str, query_string: str) -> Target:
    """The procedure path(s) of a request under ``prefix`` (no trailing slash).

    ``raw_path`` is the path as sent (still percent-encoded). The prefix is matched on the
    raw path, so ``/api/v1%2ftiers.list`` is not under ``/api/v1/`` (``NOT_FOUND``); one
    trailing slash after the path is ignored, as Node's adapter does; a malformed escape
    is ``BAD_REQUEST``.
    """
    if raw_path != prefix and not raw_path.startswith(prefix + "/"):
        refuse("NOT_FOUND", f'No procedure found on path "{shown(raw_path)}"')
    rest = raw_path[len(prefix) :]
    rest = rest[1:] if rest.startswith("/") else rest
    rest = rest[:-1] if rest.endswith("/") else rest
    try:
        path = _decode_path(rest)
    except ValueError:
        refuse("BAD_REQUEST", f'Invalid URL-encoding in path "{shown(rest)}"')
    raw_input, batch = _query_params(query_string) if query_string else (None, False)
    return Target(path.split(",") if batch else [path], batch, raw_input)


def body_text(body: bytes) -> str:
    """A request body as ``Request.text()`` reads it in Node (measured on ``@trpc/server``).

    UTF-8 whatever the bytes: an invalid sequence becomes U+FFFD (WHATWG's decoder, which
    Python's ``"replace"`` matches), so a body in UTF-16 or UTF-32 is not JSON (400) instead
    of being guessed; a leading UTF-8 byte-order mark is skipped (Node 20's fetch skips up
    to two; one more is not JSON).
    """
    text = body.decode("utf-8", "replace")
    if text.startswith(_BOM):
        text = text[2:] if text.startswith(_BOM, 1) else text[1:]
    return text


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str) -> Any:
    """``JSON.parse``: strict (no ``NaN``/``Infinity``); any failure is ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


@dataclass(frozen=True)
class Inputs:
    """Each call's input: ``(given, value)`` in call order, or the error every call reading
    its input answers (``BAD_REQUEST``, after its path, method and API key are checked)."""

    calls: list[tuple[bool, Any]]
    error: str | None


def read_inputs(method: str, target: Target, body: bytes) -> Inputs:
    """The inputs of ``target``'s calls: from ``?input=`` for GET, else from the body."""
    text = target.raw_input if method == "GET" else (body_text(body) if body else None)
    count = len(target.paths)
    absent: list[tuple[bool, Any]] = [(False, None)] * count
    if not text or (method != "GET" and not text.strip(_ASCII_SPACE)):
        return Inputs(absent, None)
    try:
        parsed = parse_json(text)
    except ValueError as error:
        return Inputs(absent, f"Unable to parse the request input as JSON: {shown(str(error))}")
    if not target.batch:
        return Inputs([(True, parsed)], None)
    if not isinstance(parsed, Mapping):
        return Inputs(absent, '"input" needs to be an object when doing a batch call')
    return Inputs([(str(i) in parsed, parsed.get(str(i))) for i in range(count)], None)


def input_is_superjson(inputs: Inputs) -> bool:
    """Whether any call's input is superjson-shaped (``{"json": ..., "meta"?: ...}``)."""
    return any(given and is_superjson_shaped(value) for given, value in inputs.calls)
