"""``chatarmin_os.importer``: reading files, checking rows, and importing them.

Imports run against an in-process local ChatarminOS through a transport that records every
request, so each test sees the exact calls made and the exact resulting companies and
contacts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chatarmin_os import AsyncChatarminOS, ChatarminOS, ContactInput, InvalidInputError
from chatarmin_os.importer import (
    ImportFileError,
    ImportSummary,
    Organisation,
    RowResult,
    SourceRow,
    check_organisations,
    import_organisations,
    parse_organisation,
    parse_organisations,
    read_organisations,
)
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from chatarmin_os.local.transport import AsyncLocalTransport
from tests.support.import_data import Recorder, actual_state, changed, expected_state, org_row

BASE_URL = "http://import.test/api/v1"


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine()
    yield eng
    eng.close()


@pytest.fixture
def recorder(engine: LocalEngine) -> Recorder:
    return Recorder(AsyncLocalTransport(engine))


@pytest.fixture
async def client(recorder: Recorder) -> AsyncIterator[AsyncChatarminOS]:
    async with httpx.AsyncClient(transport=recorder) as http:
        yield AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http)


def state(engine: LocalEngine, rows: list[dict[str, Any]]) -> dict[str, Any]:
    with ChatarminOS.local(engine) as sync:
        return actual_state(sync, [row["id"] for row in rows])


# -- reading ------------------------------------------------------------------------------

ROWS = [org_row(1, users=1), org_row(2, users=0)]
ORGS = [
    Organisation(
        id="org_1",
        name="Company 1",
        domain="company1.example",
        plan="pro",
        admin_email="admin@company1.example",
        created_at=datetime(2022, 3, 2, 9, tzinfo=timezone.utc),
        users=(ContactInput(email="user0@company1.example", name="User 0", role="Engineer"),),
    ),
    Organisation(
        id="org_2",
        name="Company 2",
        domain="company2.example",
        plan="pro",
        admin_email="admin@company2.example",
        created_at=datetime(2022, 3, 3, 9, tzinfo=timezone.utc),
    ),
]
CSV_TEXT = (
    "id,name,domain,plan,adminEmail,createdAt,users\n"
    'org_1,Company 1,company1.example,pro,admin@company1.example,2022-03-02T09:00:00.000Z,"[{""email"": ""user0@company1.example"",\n'
    '""name"": ""User 0"", ""role"": ""Engineer""}]"\n'
    "\n"
    "org_2,Company 2,company2.example,pro,admin@company2.example,2022-03-03T09:00:00.000Z,\n"
)


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [
        ("orgs.json", json.dumps(ROWS, indent=2), [None, None]),
        ("orgs.json", json.dumps({"organisations": ROWS}), [None, None]),
        ("orgs.json", json.dumps({"organizations": ROWS}), [None, None]),
        ("orgs.jsonl", "\n".join(json.dumps(row) for row in ROWS), [1, 2]),
        ("orgs.ndjson", "\n" + json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n", [2, 4]),
        ("orgs.csv", CSV_TEXT, [2, 5]),
        ("orgs.CSV", "\ufeff" + CSV_TEXT, [2, 5]),
    ],
    ids=["json", "json-wrapped", "json-us", "jsonl", "ndjson-blank-lines", "csv", "csv-bom"],
)
def test_every_format_reads_the_same_organisations(
    tmp_path: Path, name: str, text: str, lines: list[int | None]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    rows = read_organisations(path)
    assert [(row.row, row.line) for row in rows] == [(1, lines[0]), (2, lines[1])]
    assert [row.problem for row in rows] == [None, None]
    assert [parse_organisation(row.data) for row in rows] == ORGS


def test_the_format_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text(CSV_TEXT, encoding="utf-8")
    with pytest.raises(ImportFileError) as info:
        read_organisations(path)
    assert str(info.value) == (
        f"cannot tell the format of {str(path)!r} from its extension "
        "(.json, .jsonl, .ndjson or .csv); give the format"
    )
    assert [parse_organisation(row.data) for row in read_organisations(path, format="csv")] == ORGS


@pytest.mark.parametrize(
    ("format", "text", "message"),
    [
        (
            "json",
            '[{"id": "org_1",}]',
            "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 17)",
        ),
        (
            "json",
            '{"orgs": []}',
            'a JSON file must hold an array of organisations, or {"organisations": [...]}',
        ),
        (
            "json",
            '"org_1"',
            'a JSON file must hold an array of organisations, or {"organisations": [...]}',
        ),
        ("csv", "", "the CSV file is empty: it needs a header row"),
        (
            "csv",
            "name,domain\nAcme,acme.com\n",
            "the CSV header has no 'id' column (it has: name, domain)",
        ),
        (
            "csv",
            "id,domain\norg_1,acme.com\n",
            "the CSV header has no 'name' column (it has: id, domain)",
        ),
        ("csv", "id,name,id\n", "the CSV header repeats 'id'"),
    ],
)
def test_a_file_that_cannot_be_read_as_a_whole(format: Any, text: str, message: str) -> None:
    with pytest.raises(ImportFileError) as info:
        parse_organisations(text, format)
    assert str(info.value) == message


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match=r"^cannot read '.*missing\.csv': No such file"):
        read_organisations(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,name\norg_1,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ImportFileError) as info:
        read_organisations(latin)
    assert str(info.value) == f"{str(latin)!r} is not UTF-8 (line 2)"


def test_camel_and_snake_case_keys_and_loose_values() -> None:
    snake = {
        "id": 42,
        "name": "  Acme Inc ",
        "domain": "",
        "plan": None,
        "admin_email": "Admin@Acme.example",
        "created_at": "2022-03-01T10:00:00+01:00",
        "users": [{"email": "dev@acme.example", "name": "", "role": None, "isPrimary": True}],
        "seats": 12,
    }
    assert parse_organisation(snake) == Organisation(
        id="42",
        name="Acme Inc",
        admin_email="Admin@Acme.example",
        created_at=datetime(2022, 3, 1, 9, tzinfo=timezone.utc),
        users=(ContactInput(email="dev@acme.example"),),
    )
    with pytest.raises(InvalidInputError) as info:
        parse_organisation(
            {"id": "o", "name": "n", "adminEmail": "a@b.co", "admin_email": "a@b.co"}
        )
    assert str(info.value) == "adminEmail: give adminEmail or admin_email, not both"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"name": "Acme"}, "id: is required"),
        ({"id": "  ", "name": "Acme"}, "id: is required"),
        ({"id": True, "name": "Acme"}, "id: must be a string, got bool"),
        ({"id": "org_1"}, "name: is required"),
        ({"id": "org_1", "name": ["Acme"]}, "name: must be a string, got list"),
        (
            {"id": "org_1", "name": "Acme", "domain": "acme .com"},
            "domain: must be a domain name, got 'acme .com'",
        ),
        ({"id": "org_1", "name": "Acme", "plan": 3}, "plan: must be a string, got int"),
        ({"id": "org_1", "name": "Acme", "adminEmail": 7}, "adminEmail: must be a string, got int"),
        (
            {"id": "org_1", "name": "Acme", "admin_email": "bob"},
            "admin_email: must be an e-mail address, got 'bob'",
        ),
        (
            {"id": "org_1", "name": "Acme", "createdAt": "2022-13-01T00:00:00Z"},
            "createdAt: must be an ISO-8601 timestamp with a UTC offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-13-01T00:00:00Z'",
        ),
        (
            {"id": "org_1", "name": "Acme", "created_at": "2022-03-01T09:00:00"},
            "created_at: must be an ISO-8601 timestamp with a UTC offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-03-01T09:00:00'",
        ),
        (
            {"id": "org_1", "name": "Acme", "createdAt": 1646125200},
            "createdAt: must be a datetime or an ISO-8601 string, got int",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": {"email": "a@b.co"}},
            "users: must be a list, got dict",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": ["a@b.co"]},
            "users[0]: must be an object, got str",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": [{"email": "a@b.co"}, {"name": "B"}]},
            "users[1].email: is required",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": [{"email": "a@b"}]},
            "users[0].email: must be an e-mail address, got 'a@b'",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": [{"email": "a@b.co", "role": 1}]},
            "users[0].role: must be a string, got int",
        ),
        (
            {"id": "org_1", "name": "Acme", "domain": "acme " + "x" * 50},
            f"domain: must be a domain name, got {'acme ' + 'x' * 35!r}… (55 characters)",
        ),
        (["org_1", "Acme"], "row: must be an object, got list"),
    ],
)
def test_a_bad_row_is_refused_naming_its_key(row: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_organisation(row)
    assert str(info.value) == message


SURROGATE = "contains a lone surrogate (U+D800 at position 1), which cannot be sent as UTF-8"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "o\ud800", "name": "Acme"}, f"id: {SURROGATE}"),
        ({"id": "org_1", "name": "A\ud800"}, f"name: {SURROGATE}"),
        ({"id": "org_1", "name": "Acme", "plan": "p\ud800"}, f"plan: {SURROGATE}"),
        ({"id": "org_1", "name": "Acme", "domain": "a\ud800.co"}, f"domain: {SURROGATE}"),
        ({"id": "org_1", "name": "Acme", "adminEmail": "a\ud800@b.co"}, f"adminEmail: {SURROGATE}"),
        (
            {"id": "org_1", "name": "Acme", "users": [{"email": "x\ud800@y.com"}]},
            f"users[0].email: {SURROGATE}",
        ),
        (
            {"id": "org_1", "name": "Acme", "users": [{"email": "a@b.co", "name": "B\ud800"}]},
            f"users[0].name: {SURROGATE}",
        ),
    ],
)
def test_a_lone_surrogate_fails_its_row(row: dict[str, Any], message: str) -> None:
    """Text that cannot be sent as UTF-8 is refused as the SDK's calls refuse it."""
    with pytest.raises(InvalidInputError) as info:
        parse_organisation(row)
    assert str(info.value) == message
    failures = check_organisations([org_row(1), row])
    assert [(f.row, f.stage, f.message) for f in failures] == [(2, "validate", message)]


def test_records_that_cannot_be_decoded_are_rows_with_a_problem() -> None:
    jsonl = parse_organisations('{"id": "org_1", "name": "A"}\n{"id": "org_2", \n', "jsonl")
    assert jsonl[0] == SourceRow(row=1, line=1, data={"id": "org_1", "name": "A"})
    assert (jsonl[1].row, jsonl[1].line, str(jsonl[1].problem)) == (
        2,
        2,
        "row: not valid JSON: Expecting property name enclosed in double quotes (column 17)",
    )
    csv_rows = parse_organisations(
        'id,name,users\norg_1,A,"[{""email"": }]"\norg_2,B,,extra\norg_3,C\n', "csv"
    )
    assert [(r.row, r.line, str(r.problem)) for r in csv_rows] == [
        (1, 2, "users: must be a JSON array in CSV, not valid JSON: Expecting value (column 12)"),
        (2, 3, "row: has 4 cells, the header names 3"),
        (3, 4, "None"),
    ]
    assert csv_rows[0].data == {"id": "org_1", "name": "A", "users": '[{"email": }]'}
    assert csv_rows[2].data == {"id": "org_3", "name": "C"}


def test_check_organisations_lists_the_invalid_rows() -> None:
    rows = parse_organisations(
        "\n".join([json.dumps(org_row(1)), json.dumps(changed(org_row(2), id=...)), "nope"]),
        "jsonl",
    )
    failures = check_organisations(rows)
    assert [f.report_line() for f in failures] == [
        {
            "row": 2,
            "line": 2,
            "id": None,
            "stage": "validate",
            "error": "InvalidInputError",
            "code": None,
            "message": "id: is required",
        },
        {
            "row": 3,
            "line": 3,
            "id": None,
            "stage": "validate",
            "error": "InvalidInputError",
            "code": None,
            "message": "row: not valid JSON: Expecting value (column 1)",
        },
    ]


# -- importing ----------------------------------------------------------------------------


async def test_a_row_is_onboarded_then_its_users_upserted(
    client: AsyncChatarminOS, recorder: Recorder, engine: LocalEngine
) -> None:
    row = org_row(1, users=2)
    results: list[RowResult] = []
    summary = await import_organisations(client, [row], on_result=results.append)

    [(onboard, onboard_input), (upsert, upsert_input)] = recorder.calls
    assert (onboard, upsert) == ("onboard", "contacts.bulkUpsert")
    assert onboard_input == {
        "externalOrgId": "org_1",
        "label": "Imported",
        "hints": {
            "companyName": "Company 1",
            "domain": "company1.example",
            "emails": ["admin@company1.example"],
        },
        "tierCode": "pro",
        "contactEmail": "admin@company1.example",
        "createdAt": "2022-03-02T09:00:00.000Z",
    }
    [result] = results
    assert upsert_input == {
        "companyId": result.company_id,
        "contacts": [
            {"email": "user0@company1.example", "name": "User 0", "role": "Engineer"},
            {"email": "user1@company1.example", "name": "User 1", "role": "Engineer"},
        ],
    }
    assert result == RowResult(
        1, None, "org_1", "created", company_id=result.company_id, contacts_created=2
    )
    assert summary == ImportSummary(created=1, contacts_created=2)
    assert state(engine, [row]) == expected_state([row])
    with ChatarminOS.local(engine) as sync:
        access = sync.features.check_by_external_org_id("org_1", "advanced_analytics")
    assert access.is_enabled  # the pro tier was applied


async def test_the_label_and_organisation_objects(
    client: AsyncChatarminOS, recorder: Recorder
) -> None:
    org = Organisation(id="org_min", name="Minimal")
    summary = await import_organisations(client, [org], label="Legacy CRM")
    assert recorder.calls == [
        (
            "onboard",
            {
                "externalOrgId": "org_min",
                "label": "Legacy CRM",
                "hints": {"companyName": "Minimal"},
            },
        )
    ]
    assert (summary.created, summary.failed) == (1, 0)


async def test_bad_rows_fail_alone_with_their_reasons(
    client: AsyncChatarminOS, recorder: Recorder, engine: LocalEngine
) -> None:
    good = [org_row(n) for n in range(1, 6)]
    rows = parse_organisations(
        "\n".join(
            json.dumps(row)
            for row in [
                good[0],
                changed(org_row(90), id=...),
                good[1],
                changed(org_row(91), adminEmail=["admin@company91.example"]),
                good[2],
                changed(org_row(92), createdAt="last tuesday"),
                changed(org_row(93), plan="platinum"),
                good[3],
                good[4],
            ]
        ),
        "jsonl",
    )
    summary = await import_organisations(client, rows, concurrency=3)

    assert (summary.created, summary.failed, summary.contacts_created) == (5, 4, 10)
    assert [f.report_line() for f in summary.failures] == [
        {
            "row": 2,
            "line": 2,
            "id": None,
            "stage": "validate",
            "error": "InvalidInputError",
            "code": None,
            "message": "id: is required",
        },
        {
            "row": 4,
            "line": 4,
            "id": "org_91",
            "stage": "validate",
            "error": "InvalidInputError",
            "code": None,
            "message": "adminEmail: must be a string, got list",
        },
        {
            "row": 6,
            "line": 6,
            "id": "org_92",
            "stage": "validate",
            "error": "InvalidInputError",
            "code": None,
            "message": "createdAt: must be an ISO-8601 timestamp with a UTC offset, e.g. '2024-01-15T10:30:00.000Z', got 'last tuesday'",
        },
        {
            "row": 7,
            "line": 7,
            "id": "org_93",
            "stage": "onboard",
            "error": "NotFoundError",
            "code": "NOT_FOUND",
            "message": 'Tier "platinum" not found',
        },
    ]
    # Nothing was sent for an invalid row; the refused onboard left nothing behind.
    sent_ids = [payload["externalOrgId"] for path, payload in recorder.calls if path == "onboard"]
    assert sorted(sent_ids) == sorted(["org_1", "org_2", "org_3", "org_4", "org_5", "org_93"])
    assert state(engine, good) == expected_state(good)
    assert state(engine, [org_row(93)]) == {"org_93": None}


async def test_running_again_resumes_without_duplicates(
    client: AsyncChatarminOS, recorder: Recorder, engine: LocalEngine
) -> None:
    rows = [org_row(n, users=3) for n in range(1, 21)]
    stop = anyio.Event()

    def stop_after_seven(result: RowResult) -> None:
        if len(done) == 7:
            stop.set()
        done.append(result)

    done: list[RowResult] = []
    first = await import_organisations(
        client, rows, concurrency=4, stop=stop, on_result=stop_after_seven
    )
    # The rows in flight when it stopped finished; no row was started after.
    assert first.created == first.done == len(done)
    assert 8 <= first.done <= 8 + 3
    assert first.not_started == 20 - first.done
    partial = state(engine, rows)
    assert sum(snapshot is not None for snapshot in partial.values()) == first.done
    assert {k: v for k, v in partial.items() if v is not None} == {
        k: v for k, v in expected_state(rows).items() if partial[k] is not None
    }

    second = await import_organisations(client, rows, concurrency=4)
    assert (second.created, second.already_linked, second.failed) == (
        20 - first.done,
        first.done,
        0,
    )
    assert (second.contacts_created, second.contacts_updated) == (
        3 * (20 - first.done),
        3 * first.done,
    )
    assert state(engine, rows) == expected_state(rows)

    third = await import_organisations(client, rows, concurrency=4)
    assert (third.already_linked, third.contacts_created, third.contacts_updated) == (20, 0, 60)
    assert state(engine, rows) == expected_state(rows)


async def test_a_row_cut_off_after_onboard_is_completed_by_the_next_run(
    engine: LocalEngine,
) -> None:
    rows = [org_row(1), org_row(2)]
    broken = True

    async def drop_contacts_of_org_2(path: str, payload: Any) -> None:
        if broken and path == "contacts.bulkUpsert" and "user0@company2.example" in str(payload):
            raise httpx.ReadError("connection reset")

    recorder = Recorder(AsyncLocalTransport(engine), drop_contacts_of_org_2)
    async with httpx.AsyncClient(transport=recorder) as http:
        client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http)
        first = await import_organisations(client, rows)
        [failure] = first.failures
        assert failure.report_line() == {
            "row": 2,
            "line": None,
            "id": "org_2",
            "stage": "contacts",
            "error": "APIConnectionError",
            "code": None,
            "message": "Connection error calling contacts.bulkUpsert: ReadError: connection reset",
        }
        assert failure.company_id is not None
        assert (
            recorder.procedures().count("contacts.bulkUpsert") == 2
        )  # a sent mutation is not retried
        broken = False
        second = await import_organisations(client, rows)
    assert (second.already_linked, second.contacts_created, second.contacts_updated) == (2, 2, 2)
    assert state(engine, rows) == expected_state(rows)


async def test_skip_linked_leaves_linked_orgs_alone(
    client: AsyncChatarminOS, recorder: Recorder, engine: LocalEngine
) -> None:
    rows = [org_row(1), org_row(2)]
    await import_organisations(client, rows[:1])
    with ChatarminOS.local(engine) as sync:
        sync.features.set_access(
            external_org_id="org_1", feature_code="advanced_analytics", is_enabled=False
        )
    recorder.calls.clear()

    summary = await import_organisations(client, rows, skip_linked=True, concurrency=1)
    assert recorder.procedures() == [
        "companies.getByProductLink",
        "contacts.bulkUpsert",
        "companies.getByProductLink",
        "onboard",
        "contacts.bulkUpsert",
    ]
    assert (summary.already_linked, summary.created) == (1, 1)
    assert state(engine, rows) == expected_state(rows)
    with ChatarminOS.local(engine) as sync:
        # The pro tier was not applied again over the manual change.
        assert not sync.features.check_by_external_org_id("org_1", "advanced_analytics").is_enabled
        recorder.calls.clear()
        await import_organisations(client, rows[:1])  # without skip_linked: onboard again
        assert recorder.procedures() == ["onboard", "contacts.bulkUpsert"]
        assert sync.features.check_by_external_org_id("org_1", "advanced_analytics").is_enabled


async def test_rows_run_concurrency_at_a_time(engine: LocalEngine) -> None:
    full = anyio.Event()
    recorder: Recorder

    async def wait_until_full(path: str, payload: Any) -> None:
        if recorder.in_flight == 5:
            full.set()
        await full.wait()

    recorder = Recorder(AsyncLocalTransport(engine), wait_until_full)
    rows = [org_row(n, users=1) for n in range(1, 31)]
    async with httpx.AsyncClient(transport=recorder) as http:
        client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http)
        with anyio.fail_after(10):  # fewer than 5 in flight would never fill the gate
            summary = await import_organisations(client, rows, concurrency=5)
    assert recorder.max_in_flight == 5
    assert (summary.created, len(recorder.calls)) == (30, 60)
    assert state(engine, rows) == expected_state(rows)


async def test_rows_that_could_share_a_company_go_in_file_order(engine: LocalEngine) -> None:
    released = anyio.Event()
    seen: list[str] = []

    async def hold_the_first_row(path: str, payload: Any) -> None:
        if path == "onboard":
            seen.append(payload["externalOrgId"])
            if payload["externalOrgId"] == "org_a":
                await released.wait()

    rows = [
        {"id": "org_a", "name": "Acme Inc", "domain": "acme.example", "plan": "free"},
        {"id": "org_b", "name": "Other", "domain": "ACME.example", "plan": "pro"},  # same domain
        {"id": "org_c", "name": "ACME, Inc", "plan": "pro"},  # same name, punctuation aside
        {"id": "org_d", "name": "Beta"},
        {"id": "org_a", "name": "Acme Inc", "users": [{"email": "late@acme.example"}]},
    ]
    recorder = Recorder(AsyncLocalTransport(engine), hold_the_first_row)
    results: list[RowResult] = []
    async with httpx.AsyncClient(transport=recorder) as http:
        client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http)
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await import_organisations(client, rows, concurrency=5, on_result=results.append)

            tg.start_soon(run)
            while len(results) < 1:  # org_d finishes while org_a is held
                await anyio.lowlevel.checkpoint()
            assert seen == ["org_a", "org_d"]
            released.set()
    assert [(r.row, r.id, r.status) for r in results] == [
        (4, "org_d", "created"),
        (1, "org_a", "created"),
        (2, "org_b", "linked"),
        (3, "org_c", "linked"),
        (5, "org_a", "already_linked"),
    ]
    assert len({r.company_id for r in results if r.id != "org_d"}) == 1


async def test_users_go_in_chunks_of_1000(client: AsyncChatarminOS, recorder: Recorder) -> None:
    row = org_row(1, users=2500)
    summary = await import_organisations(client, [row])
    sizes = [len(payload["contacts"]) for path, payload in recorder.calls if path != "onboard"]
    assert sizes == [1000, 1000, 500]
    assert summary.contacts_created == 2500


async def test_a_refused_api_key_stops_the_import(engine: LocalEngine, recorder: Recorder) -> None:
    async with httpx.AsyncClient(transport=recorder) as http:
        client = AsyncChatarminOS(api_key="os_sk_wrong", base_url=BASE_URL, http_client=http)
        rows = [org_row(n) for n in range(1, 41)]
        summary = await import_organisations(client, rows, concurrency=4)
    assert summary.stopped_by is not None
    request_id = getattr(summary.stopped_by, "request_id", None)
    assert request_id is not None  # the answer's x-request-id, to quote to support
    assert str(summary.stopped_by) == (
        f"401 UNAUTHORIZED on onboard: Invalid API key [request_id: {request_id}]"
    )
    assert summary.failed == len(recorder.calls) <= 4
    assert summary.not_started == 40 - summary.failed
    assert {f.report_line()["error"] for f in summary.failures} == {"AuthenticationError"}


async def test_arguments_are_checked_before_anything_is_sent(
    client: AsyncChatarminOS, recorder: Recorder
) -> None:
    with pytest.raises(
        InvalidInputError, match=r"^concurrency: must be a positive integer, got 0$"
    ):
        await import_organisations(client, [org_row(1)], concurrency=0)
    with pytest.raises(InvalidInputError, match=r"^label: must not be empty$"):
        await import_organisations(client, [org_row(1)], label=" ")
    assert recorder.calls == []
    assert await import_organisations(client, []) == ImportSummary()


def test_the_import_runs_under_trio(engine: LocalEngine) -> None:
    rows = [org_row(n) for n in range(1, 7)]

    async def main() -> ImportSummary:
        recorder = Recorder(AsyncLocalTransport(engine))
        async with httpx.AsyncClient(transport=recorder) as http:
            client = AsyncChatarminOS(api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http)
            return await import_organisations(client, rows, concurrency=3)

    summary = anyio.run(main, backend="trio")
    assert (summary.created, summary.contacts_created) == (6, 12)
    assert state(engine, rows) == expected_state(rows)


async def test_an_unreachable_api_stops_the_import(engine: LocalEngine) -> None:
    down = {"org_1", "org_3", "org_4", "org_5", "org_6", "org_7", "org_8"}

    async def refuse(path: str, payload: Any) -> None:
        if path == "onboard" and payload["externalOrgId"] in down:
            raise httpx.ConnectError("connection refused")

    recorder = Recorder(AsyncLocalTransport(engine), refuse)
    rows = [org_row(n) for n in range(1, 21)]
    async with httpx.AsyncClient(transport=recorder) as http:
        client = AsyncChatarminOS(
            api_key=DEFAULT_API_KEY, base_url=BASE_URL, http_client=http, max_retries=0
        )
        summary = await import_organisations(client, rows, concurrency=1)
    # org_1 alone does not stop it (org_2 got through); org_3 .. org_4 in a row do.
    assert [(f.id, f.stage) for f in summary.failures] == [
        ("org_1", "onboard"),
        ("org_3", "onboard"),
        ("org_4", "onboard"),
    ]
    assert summary.created == 1
    assert summary.not_started == 16
    assert str(summary.stopped_by) == (
        "Connection error calling onboard: ConnectError: connection refused"
    )


def test_the_docs_csv_example_reads_as_documented() -> None:
    guide = Path(__file__).parent.parent / "docs" / "guides" / "importing.md"
    readme = guide.read_text(encoding="utf-8")
    start = readme.index("```text\nid,name,domain,plan,adminEmail,createdAt,users\n") + 8
    text = readme[start : readme.index("```", start)]
    orgs = [parse_organisation(row.data) for row in parse_organisations(text, "csv")]
    assert orgs == [
        Organisation(
            id="org_1",
            name="Acme Inc",
            domain="acme.com",
            plan="pro",
            admin_email="admin@acme.com",
            created_at=datetime(2022, 3, 1, 9, tzinfo=timezone.utc),
            users=(ContactInput(email="dev@acme.com", name="Dev"),),
        ),
        Organisation(id="org_2", name="Globex", domain="globex.com", plan="free"),
    ]
