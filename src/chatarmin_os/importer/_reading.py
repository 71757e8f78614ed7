"""Reading files of organisations: JSON, JSON Lines and CSV, into :class:`SourceRow` records.

A file that cannot be read as a whole raises :class:`ImportFileError` naming the file; a
record that is bad on its own becomes a :class:`SourceRow` with a ``problem``, for the import
to report. CSV headers are matched ignoring case (``Id,Name`` works), and a header that only
makes sense split on ``;`` or a tab is read that way (the ``note`` callback is told).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._exceptions import ChatarminOSError, InvalidInputError
from ._rows import FIELD_KEYS

__all__ = [
    "FORMATS",
    "ImportFileError",
    "ImportFormat",
    "SourceRow",
    "decode_text",
    "detect_format",
    "parse_organisations",
    "read_organisations",
]

ImportFormat = Literal["json", "jsonl", "csv"]
"""The file formats ``read_organisations`` understands."""

FORMATS: dict[str, ImportFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
"""File extension (lower case) -> format."""

Note = Callable[[str], None]
"""Told about something read in an unusual way (a ``;``-separated CSV, say)."""

_SEPARATORS = {";": "';' (semicolons)", "\t": "tabs", "|": "'|'"}

# Each accepted key, case-folded -> its spelling in FIELD_KEYS.
_CANONICAL = {key.casefold(): key for keys in FIELD_KEYS.values() for key in keys}


class ImportFileError(ChatarminOSError):
    """The file cannot be read as a whole: missing, not UTF-8, not JSON, no CSV header, ..."""


@dataclass(frozen=True)
class SourceRow:
    """One record of a file, as read, before its checks."""

    row: int
    """Its position among the file's records, from 1."""
    line: int | None
    """The line it starts on (JSON Lines and CSV; ``None`` for JSON)."""
    data: Any
    """The decoded record (a dict when well formed)."""
    problem: InvalidInputError | None = None
    """Why the record could not even be decoded (a JSON Lines line that is not JSON, ...)."""


def detect_format(path: str | os.PathLike[str]) -> ImportFormat:
    """The format of a file from its extension (``.json``, ``.jsonl``/``.ndjson``, ``.csv``)."""
    suffix = Path(path).suffix.lower()
    try:
        return FORMATS[suffix]
    except KeyError:
        raise ImportFileError(
            f"cannot tell the format of {os.fspath(path)!r} from its extension "
            f"(.json, .jsonl, .ndjson or .csv); give the format"
        ) from None


def read_organisations(
    path: str | os.PathLike[str],
    *,
    format: ImportFormat | None = None,
    note: Note | None = None,
) -> list[SourceRow]:
    """Read a JSON, JSON Lines or CSV file of organisations (format from the extension).

    Raises :class:`ImportFileError`, naming the file, when it cannot be read as a whole; a
    record that is bad on its own comes back as a :class:`SourceRow` for the import to
    report. ``note`` is told when a CSV file is read with another separator than ``,``.
    """
    chosen = format or detect_format(path)
    source = repr(os.fspath(path))
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {source}: {exc.strerror or exc}") from None
    return parse_organisations(decode_text(data, source), chosen, source=source, note=note)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (a BOM is dropped); :class:`ImportFileError` naming the first bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{source} is not UTF-8 (line {line})") from None


def parse_organisations(
    text: str,
    format: ImportFormat,
    *,
    source: str | None = None,
    note: Note | None = None,
) -> list[SourceRow]:
    """The records of a file's text in ``format`` (see :func:`read_organisations`).

    ``source`` (e.g. the file's name) starts the message of an :class:`ImportFileError`.
    """
    try:
        if format == "json":
            return _parse_json(text)
        if format == "jsonl":
            return _parse_jsonl(text)
        if format == "csv":
            return _parse_csv(text, source or "the file", note)
    except ImportFileError as exc:
        if source is None:
            raise
        raise ImportFileError(f"{source}: {exc}") from None
    raise ImportFileError(f"unknown format {format!r}: json, jsonl or csv")


def _json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def _parse_json(text: str) -> list[SourceRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        at_end = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        if text.strip() and at_end:
            where += "; the file ends too early: is it cut short?"
        raise ImportFileError(f"not valid JSON: {exc.msg} ({where})") from None
    if isinstance(document, dict):
        keys = [key for key in ("organisations", "organizations") if key in document]
        if len(keys) == 1 and len(document) == 1:
            document = document[keys[0]]
    if not isinstance(document, list):
        raise ImportFileError(
            'a JSON file must hold an array of organisations, or {"organisations": [...]}'
        )
    return [SourceRow(row=index, line=None, data=item) for index, item in enumerate(document, 1)]


def _parse_jsonl(text: str) -> list[SourceRow]:
    rows: list[SourceRow] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        position = len(rows) + 1
        try:
            rows.append(SourceRow(row=position, line=number, data=json.loads(raw)))
        except json.JSONDecodeError as exc:
            problem = InvalidInputError("row", _json_problem(exc))
            rows.append(SourceRow(row=position, line=number, data=None, problem=problem))
    return rows


def _header(text: str, delimiter: str) -> list[str] | None:
    """The header's column names split on ``delimiter`` (``None``: no header row)."""
    try:
        header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except StopIteration:
        return None
    except csv.Error as exc:
        raise ImportFileError(f"bad CSV header: {exc}") from None
    return [_CANONICAL.get(name.strip().casefold(), name.strip()) for name in header]


def _missing(columns: list[str]) -> str | None:
    """The first required field the header has no column for."""
    for required in ("id", "name"):
        if not any(key in columns for key in FIELD_KEYS[required]):
            return required
    return None


def _delimiter(text: str, source: str, note: Note | None) -> str:
    """``,``, unless the header only makes sense split on ``;``, a tab or ``|``."""
    columns = _header(text, ",")
    if columns is None or _missing(columns) is None:
        return ","
    for separator, name in _SEPARATORS.items():
        other = _header(text, separator)
        if other is not None and len(other) > 1 and _missing(other) is None:
            if note is not None:
                note(f"{source} is separated by {name}, not commas: read it so")
            return separator
    return ","


def _parse_csv(text: str, source: str, note: Note | None) -> list[SourceRow]:
    delimiter = _delimiter(text, source, note)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the CSV file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise ImportFileError(f"bad CSV header: {exc}") from None
    columns = [_CANONICAL.get(name.strip().casefold(), name.strip()) for name in header]
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        raise ImportFileError(f"the CSV header repeats {', '.join(map(repr, repeated))}")
    missing = _missing(columns)
    if missing is not None:
        shown = ", ".join(name.strip() for name in header)
        message = f"the CSV header has no {missing!r} column (it has: {shown})"
        hint = next((name for sep, name in _SEPARATORS.items() if sep in shown), None)
        if hint is not None:
            message += f"; it looks separated by {hint}: CSV here is comma-separated"
        raise ImportFileError(message)
    return _records(reader, columns)


def _records(reader: Any, columns: list[str]) -> list[SourceRow]:
    rows: list[SourceRow] = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFileError(f"bad CSV on line {reader.line_num}: {exc}") from None
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        position = len(rows) + 1
        if len(cells) > len(columns):
            problem = InvalidInputError(
                "row", f"has {len(cells)} cells, the header names {len(columns)}"
            )
            rows.append(SourceRow(row=position, line=line, data=None, problem=problem))
            continue
        record: dict[str, Any] = {
            column: cell
            for column, cell in zip(columns, cells, strict=False)
            if column and cell.strip()
        }
        if "users" in record:
            try:
                record["users"] = json.loads(record["users"])
            except json.JSONDecodeError as exc:
                problem = InvalidInputError(
                    "users", f"must be a JSON array in CSV, {_json_problem(exc)}"
                )
                rows.append(SourceRow(row=position, line=line, data=record, problem=problem))
                continue
        rows.append(SourceRow(row=position, line=line, data=record))
    return rows
