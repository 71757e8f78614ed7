"""Bulk onboarding: organisations and their contacts from JSON, JSON Lines or CSV.

The engine of ``chatarmin-os import``, usable from code as well::

    from chatarmin_os import AsyncChatarminOS
    from chatarmin_os.importer import import_organisations, read_organisations

    async with AsyncChatarminOS() as client:
        summary = await import_organisations(client, read_organisations("orgs.jsonl"))
    print(summary.created, summary.failed)

Each organisation is onboarded as the README's "Backfilling historical data" pattern does
it: ``onboard(external_org_id=id, label=..., hints={company_name: name, domain,
emails: [adminEmail]}, tier_code=plan, contact_email=adminEmail, created_at=createdAt)``,
then ``contacts.bulk_upsert`` of its ``users`` (at most 1000 per call).

Decisions:

* **Rows** have ``id`` (a string, or an integer turned into one), ``name``, and optionally
  ``domain``, ``plan``, ``adminEmail``, ``createdAt`` (ISO-8601 with an offset) and
  ``users`` (a list of ``{email, name?, role?}``). camelCase and snake_case keys are both
  accepted (``admin_email``, ``created_at``); other keys are ignored. ``null`` and empty
  strings count as not given; strings are stripped.
* **Files**: JSON (an array of rows, or ``{"organisations": [...]}``), JSON Lines (one row
  per line, blank lines skipped) and CSV (a header row naming the keys; ``users`` is a
  cell holding the JSON array; empty cells are not given). UTF-8, a BOM is fine.
* **Every row is checked before anything is sent for it**; a bad row is reported and
  never stops the others. Server errors (an unknown plan, say) fail only their row.
* **Resuming is running again**: ``onboard`` answers ``already_linked`` for an org id that
  is linked, and contacts are matched by e-mail, so a second run completes what the first
  left undone and duplicates nothing. The server is the only state: there is no local
  state file to go stale. ``skip_linked=True`` leaves linked orgs untouched (no tier
  re-applied) and only upserts their users.
* **Order where it matters**: rows that could land on the same company (the same org id,
  domain or company name, compared ignoring case and punctuation) are sent one after
  another in file order; all other rows run ``concurrency`` at a time. The result is
  therefore the same as a one-after-another run.
* **Stopping early**: a refused API key stops the import (no later row could succeed), and
  so does an API that cannot be reached (after the client's retries) for more rows in a
  row than ``concurrency``; the rows not started are left for the next run. Every other
  error fails only its row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio

from ._async.client import AsyncChatarminOS
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ChatarminOSError,
    InvalidInputError,
)
from ._inputs import ContactInput, HintsDict, OnboardInput
from ._validate import model_input, positive_int, require_str, show, timestamp
from ._wire import MAX_BULK_CONTACTS

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LABEL",
    "FORMATS",
    "ImportFileError",
    "ImportFormat",
    "ImportSummary",
    "Organisation",
    "RowResult",
    "RowStatus",
    "SourceRow",
    "Stage",
    "check_organisations",
    "decode_text",
    "detect_format",
    "import_organisations",
    "parse_organisation",
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

DEFAULT_CONCURRENCY = 8
"""Rows in flight at once unless told otherwise."""

DEFAULT_LABEL = "Imported"
"""The product-link label of imported organisations, as in the README's backfill example."""

RowStatus = Literal["created", "linked", "already_linked", "failed"]
"""What happened to a row: ``onboard``'s link status, or ``"failed"``."""

Stage = Literal["validate", "lookup", "onboard", "contacts"]
"""Where a row failed: its checks, the linked-org look-up, ``onboard``, or the contacts."""

# An e-mail address as the API takes one (local@domain.tld, no whitespace), checked here so
# that a bad address fails its row before anything is sent for it.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.][^@\s]*$")
_MESSAGE_LIMIT = 300

# Each field's accepted keys, the camelCase spelling first.
_KEYS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "name": ("name",),
    "domain": ("domain",),
    "plan": ("plan",),
    "admin_email": ("adminEmail", "admin_email"),
    "created_at": ("createdAt", "created_at"),
    "users": ("users",),
}


class ImportFileError(ChatarminOSError):
    """The file cannot be read as a whole: missing, not UTF-8, not JSON, no CSV header, ..."""


@dataclass(frozen=True)
class Organisation:
    """One organisation to onboard, checked (build it with :func:`parse_organisation`)."""

    id: str
    """Your product's org id: the ``external_org_id`` it is linked by."""
    name: str
    """The company name (a smart-link hint, and the name of a company created for it)."""
    domain: str | None = None
    """The company's domain (a smart-link hint)."""
    plan: str | None = None
    """A tier code to apply, e.g. ``"pro"``."""
    admin_email: str | None = None
    """The admin's e-mail: the company's contact (primary when it has none yet)."""
    created_at: datetime | None = None
    """When the organisation was created in your product (kept for a company created now)."""
    users: tuple[ContactInput, ...] = ()
    """Contacts to upsert, matched by e-mail."""

    def onboard_input(self, label: str) -> OnboardInput:
        """The keyword arguments of ``onboard`` for this organisation."""
        hints: HintsDict = {"company_name": self.name}
        if self.domain is not None:
            hints["domain"] = self.domain
        if self.admin_email is not None:
            hints["emails"] = [self.admin_email]
        arguments: OnboardInput = {"external_org_id": self.id, "label": label, "hints": hints}
        if self.plan is not None:
            arguments["tier_code"] = self.plan
        if self.admin_email is not None:
            arguments["contact_email"] = self.admin_email
        if self.created_at is not None:
            arguments["created_at"] = self.created_at
        return arguments


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


@dataclass(frozen=True)
class RowResult:
    """What happened to one row."""

    row: int
    """Its position, from 1."""
    line: int | None
    """The line it starts on in its file, when known."""
    id: str | None
    """The org id, when the row has a readable one."""
    status: RowStatus
    """``"created"``, ``"linked"``, ``"already_linked"`` or ``"failed"``."""
    company_id: str | None = None
    """The ChatarminOS company, once known."""
    contacts_created: int = 0
    """Contacts of ``users`` created."""
    contacts_updated: int = 0
    """Contacts of ``users`` that existed and were updated."""
    stage: Stage | None = None
    """Where it failed (``None`` when it did not)."""
    error: ChatarminOSError | None = None
    """Why it failed (``None`` when it did not)."""

    @property
    def message(self) -> str | None:
        """A short, one-line description of the error (never the API key)."""
        if self.error is None:
            return None
        if isinstance(self.error, APIStatusError):
            text = self.error.message or str(self.error)
        else:
            text = str(self.error)
        text = " ".join(text.split())
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"

    def report_line(self) -> dict[str, Any]:
        """The failure report's JSON object for this row.

        ``{"row", "line", "id", "stage", "error" (the exception class), "code" (the tRPC
        code or ``null``), "message"}``.
        """
        return {
            "row": self.row,
            "line": self.line,
            "id": self.id,
            "stage": self.stage,
            "error": type(self.error).__name__ if self.error is not None else None,
            "code": getattr(self.error, "code", None),
            "message": self.message,
        }


@dataclass
class ImportSummary:
    """Counts of an import, and its failed rows; :meth:`add` one :class:`RowResult` at a time."""

    created: int = 0
    """Rows whose org got a new company."""
    linked: int = 0
    """Rows whose org was linked to a company that existed (smart-linked)."""
    already_linked: int = 0
    """Rows whose org id was linked already (a re-run, or ``skip_linked``)."""
    failed: int = 0
    """Rows that failed, invalid ones included."""
    contacts_created: int = 0
    """Contacts of ``users`` created."""
    contacts_updated: int = 0
    """Contacts of ``users`` updated."""
    not_started: int = 0
    """Rows never started because the import was stopped."""
    failures: list[RowResult] = field(default_factory=list)
    """The failed rows, in the order they failed."""
    stopped_by: ChatarminOSError | None = None
    """The error that stopped the import early (a refused key, an unreachable API), if any."""

    @property
    def done(self) -> int:
        """Rows finished, failed ones included."""
        return self.created + self.linked + self.already_linked + self.failed

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        if result.status == "created":
            self.created += 1
        elif result.status == "linked":
            self.linked += 1
        elif result.status == "already_linked":
            self.already_linked += 1
        else:
            self.failed += 1
            self.failures.append(result)
        self.contacts_created += result.contacts_created
        self.contacts_updated += result.contacts_updated


# -- reading ------------------------------------------------------------------------------


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
    path: str | os.PathLike[str], *, format: ImportFormat | None = None
) -> list[SourceRow]:
    """Read a JSON, JSON Lines or CSV file of organisations (format from the extension).

    Raises :class:`ImportFileError` when the file cannot be read as a whole; a record that
    is bad on its own comes back as a :class:`SourceRow` for the import to report.
    """
    chosen = format or detect_format(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {os.fspath(path)!r}: {exc.strerror or exc}") from None
    return parse_organisations(decode_text(data, repr(os.fspath(path))), chosen)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text (a BOM is dropped); :class:`ImportFileError` naming the first bad line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"{source} is not UTF-8 (line {line})") from None


def parse_organisations(text: str, format: ImportFormat) -> list[SourceRow]:
    """The records of a file's text in ``format`` (see :func:`read_organisations`)."""
    if format == "json":
        return _parse_json(text)
    if format == "jsonl":
        return _parse_jsonl(text)
    if format == "csv":
        return _parse_csv(text)
    raise ImportFileError(f"unknown format {format!r}: json, jsonl or csv")


def _json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON: {exc.msg} (column {exc.colno})"


def _parse_json(text: str) -> list[SourceRow]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
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


def _parse_csv(text: str) -> list[SourceRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("the CSV file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise ImportFileError(f"bad CSV header: {exc}") from None
    columns = [name.strip() for name in header]
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        raise ImportFileError(f"the CSV header repeats {', '.join(map(repr, repeated))}")
    for required in ("id", "name"):
        if not any(key in columns for key in _KEYS[required]):
            raise ImportFileError(
                f"the CSV header has no {required!r} column (it has: {', '.join(columns)})"
            )
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


# -- checking -----------------------------------------------------------------------------


def _lookup(data: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """The key used for a field, and its value (``None`` when absent, empty or null)."""
    present = [key for key in _KEYS[name] if key in data]
    if len(present) > 1:
        raise InvalidInputError(present[0], f"give {' or '.join(present)}, not both")
    key = present[0] if present else _KEYS[name][0]
    value = data.get(key)
    if isinstance(value, str):
        value = value.strip() or None
    return key, value


def _text(key: str, value: Any, *, required: bool = False) -> str | None:
    """A string field as :func:`_lookup` gives it (``None``: not given), sendable as UTF-8."""
    if value is None:
        if required:
            raise InvalidInputError(key, "is required")
        return None
    return require_str(key, value)


def _email(key: str, value: Any, *, required: bool = False) -> str | None:
    text = _text(key, value, required=required)
    if text is not None and (not _EMAIL.match(text) or len(text) > 320):
        raise InvalidInputError(key, f"must be an e-mail address, got {show(text)}")
    return text


def _users(key: str, value: Any) -> tuple[ContactInput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInputError(key, f"must be a list, got {type(value).__name__}")
    users: list[ContactInput] = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(where, f"must be an object, got {type(item).__name__}")
        fields: dict[str, str] = {}
        for name in ("email", "name", "role"):
            raw = item.get(name)
            if isinstance(raw, str):
                raw = raw.strip() or None
            checked = (
                _email(f"{where}.email", raw, required=True)
                if name == "email"
                else _text(f"{where}.{name}", raw)
            )
            if checked is not None:
                fields[name] = checked
        users.append(model_input(where, ContactInput, fields))
    return tuple(users)


def parse_organisation(data: Any) -> Organisation:
    """Check one row and build its :class:`Organisation`.

    Raises :class:`~chatarmin_os.InvalidInputError` naming the key as the row spells it
    (``adminEmail``, ``users[2].email``, ...) and the problem.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError("row", f"must be an object, got {type(data).__name__}")
    id_key, raw_id = _lookup(data, "id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    org_id = _text(id_key, raw_id, required=True)
    assert org_id is not None
    name_key, raw_name = _lookup(data, "name")
    name = _text(name_key, raw_name, required=True)
    assert name is not None
    domain_key, raw_domain = _lookup(data, "domain")
    domain = _text(domain_key, raw_domain)
    if domain is not None and any(char.isspace() for char in domain):
        raise InvalidInputError(domain_key, f"must be a domain name, got {show(domain)}")
    plan_key, raw_plan = _lookup(data, "plan")
    email_key, raw_email = _lookup(data, "admin_email")
    created_key, raw_created = _lookup(data, "created_at")
    users_key, raw_users = _lookup(data, "users")
    return Organisation(
        id=org_id,
        name=name,
        domain=domain,
        plan=_text(plan_key, raw_plan),
        admin_email=_email(email_key, raw_email),
        created_at=None if raw_created is None else timestamp(created_key, raw_created),
        users=_users(users_key, raw_users),
    )


# -- importing ----------------------------------------------------------------------------


def _org_id_of(data: Any) -> str | None:
    """The org id of a row that may be invalid, for its report line."""
    if not isinstance(data, Mapping):
        return None
    value = data.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() or None if isinstance(value, str) else None


def _name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(char for char in folded if char.isalnum())


def _order_keys(org: Organisation) -> list[str]:
    """What could make two rows land on the same company (see the module docstring)."""
    keys = [f"id:{org.id}", f"name:{_name_key(org.name)}"]
    if org.domain is not None:
        keys.append(f"domain:{org.domain.casefold()}")
    return keys


@dataclass(frozen=True)
class _Checked:
    row: int
    line: int | None
    org: Organisation | None
    failure: RowResult | None


def _check_all(
    organisations: Iterable[Organisation | SourceRow | Mapping[str, Any]],
) -> Iterator[_Checked]:
    for position, entry in enumerate(organisations, 1):
        if isinstance(entry, SourceRow):
            row, line, data, error = entry.row, entry.line, entry.data, entry.problem
        else:
            row, line, data, error = position, None, entry, None
        if error is None:
            try:
                org = data if isinstance(data, Organisation) else parse_organisation(data)
            except InvalidInputError as exc:
                error = exc
            else:
                yield _Checked(row, line, org, None)
                continue
        failure = RowResult(row, line, _org_id_of(data), "failed", stage="validate", error=error)
        yield _Checked(row, line, None, failure)


def check_organisations(
    organisations: Iterable[Organisation | SourceRow | Mapping[str, Any]],
) -> list[RowResult]:
    """The invalid rows, as failed :class:`RowResult` objects (stage ``"validate"``).

    What ``chatarmin-os import --dry-run`` reports: every row checked, nothing sent.
    """
    return [checked.failure for checked in _check_all(organisations) if checked.failure]


@dataclass
class _Item:
    row: int
    line: int | None
    org: Organisation
    after: list[anyio.Event]
    done: anyio.Event


def _prepare(checked: Iterable[_Checked]) -> list[_Item]:
    """The valid rows, each with the rows it must wait for (same id, name or domain)."""
    items: list[_Item] = []
    last: dict[str, anyio.Event] = {}
    for entry in checked:
        if entry.org is None:
            continue
        done = anyio.Event()
        keys = _order_keys(entry.org)
        after = list({id(event): event for key in keys if (event := last.get(key))}.values())
        for key in keys:
            last[key] = done
        items.append(_Item(entry.row, entry.line, entry.org, after, done))
    return items


def _chunks(users: Sequence[ContactInput]) -> Iterator[Sequence[ContactInput]]:
    for start in range(0, len(users), MAX_BULK_CONTACTS):
        yield users[start : start + MAX_BULK_CONTACTS]


async def _import_one(
    client: AsyncChatarminOS, item: _Item, label: str, skip_linked: bool
) -> RowResult:
    org = item.org
    stage: Stage = "lookup"
    company_id: str | None = None
    created = updated = 0
    try:
        status: RowStatus
        existing = None
        if skip_linked:
            existing = await client.companies.get_by_product_link(external_org_id=org.id)
        if existing is not None:
            company_id, status = existing.id, "already_linked"
        else:
            stage = "onboard"
            onboarded = await client.onboard(**org.onboard_input(label))
            company_id, status = onboarded.company_id, onboarded.link_status
        stage = "contacts"
        for chunk in _chunks(org.users):
            upserted = await client.contacts.bulk_upsert(company_id=company_id, contacts=chunk)
            created += upserted.created
            updated += upserted.updated
    except ChatarminOSError as error:
        return RowResult(
            item.row,
            item.line,
            org.id,
            "failed",
            company_id=company_id,
            contacts_created=created,
            contacts_updated=updated,
            stage=stage,
            error=error,
        )
    return RowResult(
        item.row,
        item.line,
        org.id,
        status,
        company_id=company_id,
        contacts_created=created,
        contacts_updated=updated,
    )


async def import_organisations(
    client: AsyncChatarminOS,
    organisations: Iterable[Organisation | SourceRow | Mapping[str, Any]],
    *,
    label: str = DEFAULT_LABEL,
    concurrency: int = DEFAULT_CONCURRENCY,
    skip_linked: bool = False,
    stop: anyio.Event | None = None,
    on_result: Callable[[RowResult], None] | None = None,
) -> ImportSummary:
    """Onboard organisations and upsert their users, ``concurrency`` rows at a time.

    Args:
        client: the client to import with.
        organisations: rows as read by :func:`read_organisations`, plain dicts (checked
            here, positions counted from 1), or :class:`Organisation` objects.
        label: the product-link label of the imported orgs (default ``"Imported"``).
        concurrency: rows in flight at once (default 8).
        skip_linked: look each org id up first and, when it is linked already, leave the
            company alone (no ``onboard``, so its tier is not re-applied) and only upsert the
            row's users. Costs a query per row.
        stop: set it to stop starting rows; the rows in flight finish, the rest are counted
            in ``not_started``. (To abandon the rows in flight too, cancel the call.)
        on_result: called with each row's :class:`RowResult` as it finishes (progress,
            a failure report written as the import goes).

    Returns the :class:`ImportSummary`. Works under asyncio and trio (anyio). A bad row,
    or a row the server refuses, fails alone; an ``AuthenticationError``, or more than
    ``concurrency`` rows in a row that cannot reach the API, stops the import
    (``stopped_by``). Running the same rows again resumes: see the module docstring.
    """
    label = require_str("label", label)
    concurrency = positive_int("concurrency", concurrency)
    checked = list(_check_all(organisations))
    summary = ImportSummary()
    unreachable = 0  # rows in a row that could not reach the API

    def finish(result: RowResult) -> None:
        nonlocal unreachable
        summary.add(result)
        unreachable = unreachable + 1 if isinstance(result.error, APIConnectionError) else 0
        fatal = isinstance(result.error, AuthenticationError) or unreachable > concurrency
        if fatal and summary.stopped_by is None:
            summary.stopped_by = result.error
        if on_result is not None:
            on_result(result)

    def halted() -> bool:
        return summary.stopped_by is not None or (stop is not None and stop.is_set())

    async def worker() -> None:
        while not halted():
            item = next(queue, None)
            if item is None:
                return
            try:
                for event in item.after:
                    await event.wait()
                result = await _import_one(client, item, label, skip_linked)
            finally:
                item.done.set()
            finish(result)

    # Invalid rows are known before anything is sent: report them first.
    for entry in checked:
        if entry.failure is not None:
            finish(entry.failure)
    valid = _prepare(checked)
    queue = iter(valid)

    async with anyio.create_task_group() as pool:
        for _ in range(min(concurrency, len(valid))):
            pool.start_soon(worker)
    summary.not_started = sum(1 for _ in queue)
    return summary
