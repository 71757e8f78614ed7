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
  per line, blank lines skipped) and CSV (a header row naming the keys, matched ignoring
  case; ``users`` is a cell holding the JSON array; empty cells are not given; a file
  separated by ``;`` or tabs is recognised by its header). UTF-8, a BOM is fine.
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
* **Stopping early**: an error that would fail every row stops the import after the first
  rows: a refused API key, a base URL where the server has no such procedure (``.../api``
  for ``.../api/v1``), an answer that is not tRPC; so does an API that cannot be reached
  (after the client's retries) for a few rows in a row. :func:`stop_reason` says why in one
  line, naming the URL. The rows not started are left for the next run. Every other error
  fails only its row.

The package: ``_reading`` (files into records), ``_rows`` (a record checked into an
:class:`Organisation`), ``_results`` (row results and the summary), ``_running``
(:func:`import_organisations`); the command line is ``_cli``, with ``_progress`` and
``_report``. Which errors stop a run, and their one-line explanation, live in
``chatarmin_os._explain`` (shared with the other commands).
"""

from .._explain import is_run_wide, stop_reason
from ._reading import (
    FORMATS,
    ImportFileError,
    ImportFormat,
    SourceRow,
    decode_text,
    detect_format,
    parse_organisations,
    read_organisations,
)
from ._results import ImportSummary, RowResult, RowStatus, Stage
from ._rows import Organisation, parse_organisation
from ._running import (
    DEFAULT_CONCURRENCY,
    DEFAULT_LABEL,
    FIRST_WAVE,
    check_organisations,
    import_organisations,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_LABEL",
    "FIRST_WAVE",
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
    "is_run_wide",
    "parse_organisation",
    "parse_organisations",
    "read_organisations",
    "stop_reason",
]
