"""Running an import: each row onboarded, then its users upserted, ``concurrency`` at a time.

* **Every row is checked before anything is sent for it**; a bad row is reported and never
  stops the others. Server errors (an unknown plan, say) fail only their row.
* **Order where it matters**: rows that could land on the same company (the same org id,
  domain or company name, compared ignoring case and punctuation) are sent one after another
  in file order; all other rows run ``concurrency`` at a time.
* **A slow start**: at most :data:`FIRST_WAVE` rows go out before any has come back; each row
  that finishes without a run-wide error lets one more run at once, up to ``concurrency``.
  So an error that would fail every row (see :mod:`chatarmin_os._explain`) fails a handful at most.
* **Stopping early**: a run-wide error stops the import at once, and so does an API that
  cannot be reached (after the client's retries) for more rows in a row than
  ``min(concurrency, FIRST_WAVE)``; the rows not started are left for the next run.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

from .._async.client import AsyncChatarminOS
from .._exceptions import ChatarminOSError, InvalidInputError
from .._explain import is_run_wide, is_unreachable
from .._inputs import ContactInput
from .._validate import positive_int, require_str
from .._wire import MAX_BULK_CONTACTS
from ._reading import SourceRow
from ._results import ImportSummary, RowResult, RowStatus, Stage
from ._rows import Organisation, org_id_of, parse_organisation

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LABEL",
    "FIRST_WAVE",
    "check_organisations",
    "import_organisations",
]

DEFAULT_CONCURRENCY = 8
"""Rows in flight at once unless told otherwise."""

DEFAULT_LABEL = "Imported"
"""The product-link label of imported organisations, as in the README's backfill example."""

FIRST_WAVE = 8
"""Rows in flight at most before the first one has come back (see the module docstring)."""

Rows = Iterable[Organisation | SourceRow | Mapping[str, Any]]


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


def _check_all(organisations: Rows) -> Iterator[_Checked]:
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
        failure = RowResult(row, line, org_id_of(data), "failed", stage="validate", error=error)
        yield _Checked(row, line, None, failure)


def check_organisations(organisations: Rows) -> list[RowResult]:
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
    organisations: Rows,
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
    or a row the server refuses, fails alone. An error that would fail every row (a refused
    key, a base URL with no such procedure, an answer that is not tRPC), or a few rows in a
    row that cannot reach the API, stops the import (``stopped_by``; ``stop_reason`` says
    why in one line) after at most :data:`FIRST_WAVE` rows when it happens from the start.
    Running the same rows again resumes: see the package docstring.
    """
    label = require_str("label", label)
    concurrency = positive_int("concurrency", concurrency)
    checked = list(_check_all(organisations))
    summary = ImportSummary()
    unreachable = 0  # rows in a row that could not reach the API
    unreachable_limit = min(concurrency, FIRST_WAVE)
    workers = 0

    def finish(result: RowResult) -> None:
        nonlocal unreachable
        summary.add(result)
        unreachable = unreachable + 1 if is_unreachable(result.error) else 0
        fatal = is_run_wide(result.error) or unreachable > unreachable_limit
        if fatal and summary.stopped_by is None:
            summary.stopped_by = result.error
        if on_result is not None:
            on_result(result)

    def halted() -> bool:
        return summary.stopped_by is not None or (stop is not None and stop.is_set())

    def grow(pool: anyio.abc.TaskGroup) -> None:
        nonlocal workers
        if workers < concurrency:
            workers += 1
            pool.start_soon(worker, pool)

    async def worker(pool: anyio.abc.TaskGroup) -> None:
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
            if not halted() and not is_unreachable(result.error):
                grow(pool)  # this row came back: one more may run at once

    # Invalid rows are known before anything is sent: report them first.
    for entry in checked:
        if entry.failure is not None:
            finish(entry.failure)
    valid = _prepare(checked)
    queue = iter(valid)

    async with anyio.create_task_group() as pool:
        for _ in range(min(concurrency, FIRST_WAVE, len(valid))):
            grow(pool)
    summary.not_started = sum(1 for _ in queue)
    return summary
