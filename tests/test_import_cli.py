"""``chatarmin-os import`` run in this process: summary, report, dry run, exit codes, Ctrl-C.

The command's own code (argument parsing included) runs with its connection pool replaced
by a recording transport onto an in-process local ChatarminOS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from chatarmin_os import ChatarminOS, InvalidInputError
from chatarmin_os.cli import main
from chatarmin_os.importer import ImportSummary, RowResult
from chatarmin_os.importer import _cli as _import_cli
from chatarmin_os.importer._progress import Progress
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from chatarmin_os.local.transport import AsyncLocalTransport
from tests.support.import_data import Hook, Recorder, actual_state, changed, expected_state, org_row

SECONDS = re.compile(r" in \d+\.\d s")


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    eng = LocalEngine()
    yield eng
    eng.close()


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("CHATARMIN_OS_BASE_URL", "http://import.test/api/v1")
    monkeypatch.delenv("CHATARMIN_OS_LOG", raising=False)
    monkeypatch.delenv("TERM", raising=False)


class Run:
    """One run of the command: exit status, stdout (time blanked), stderr, requests."""

    def __init__(self, status: int, out: str, err: str, recorder: Recorder) -> None:
        self.status = status
        self.out = SECONDS.sub(" in T s", out)
        self.err = err
        self.recorder = recorder


def run(
    argv: Sequence[str],
    engine: LocalEngine,
    hook: Hook | None = None,
    err: io.StringIO | None = None,
) -> Run:
    parser = argparse.ArgumentParser(prog="chatarmin-os")
    _import_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import", *argv])
    recorder = Recorder(AsyncLocalTransport(engine), hook)
    out, err = io.StringIO(), err or io.StringIO()
    status = _import_cli.execute(
        args, http_client=httpx.AsyncClient(transport=recorder), stdout=out, stderr=err
    )
    return Run(status, out.getvalue(), err.getvalue(), recorder)


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def state(engine: LocalEngine, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    with ChatarminOS.local(engine) as sync:
        return actual_state(sync, [row["id"] for row in rows])


GOOD = [org_row(n) for n in range(1, 5)]
MIXED = [
    GOOD[0],
    changed(org_row(90), id=...),
    GOOD[1],
    changed(org_row(91), adminEmail=91),
    GOOD[2],
    changed(org_row(92), createdAt="2022-02-30T00:00:00Z"),
    changed(org_row(93), plan="platinum"),
    GOOD[3],
]
REPORT = [
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
        "message": "adminEmail: must be a string, got int",
    },
    {
        "row": 6,
        "line": 6,
        "id": "org_92",
        "stage": "validate",
        "error": "InvalidInputError",
        "code": None,
        "message": "createdAt: must be an ISO-8601 timestamp with a UTC offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-02-30T00:00:00Z'",
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


def read_report(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_import_reports_bad_rows_and_exits_1(tmp_path: Path, engine: LocalEngine) -> None:
    path = write_jsonl(tmp_path / "orgs.jsonl", MIXED)
    result = run([str(path), "--concurrency", "1"], engine)

    assert result.status == 1
    report = Path(f"{path}.failed.jsonl")
    assert result.out == (
        f"Imported {path}: 8 rows in T s\n"
        "  created              4\n"
        "  linked               0\n"
        "  already linked       0\n"
        f"  failed               4   see {report}\n"
        "  contacts             8 created, 0 updated\n"
    )
    assert read_report(report) == REPORT
    assert result.err == (
        "failed row 2, line 2: id: is required\n"
        "1/8 rows done, 1 failed\n"
        "failed row 4, line 4, id org_91: adminEmail: must be a string, got int\n"
        "2/8 rows done, 2 failed\n"
        "failed row 6, line 6, id org_92: createdAt: must be an ISO-8601 timestamp with a UTC "
        "offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-02-30T00:00:00Z'\n"
        "3/8 rows done, 3 failed\n"
        "4/8 rows done, 3 failed\n"
        "5/8 rows done, 3 failed\n"
        "6/8 rows done, 3 failed\n"
        "failed row 7, line 7, id org_93: onboard: NotFoundError NOT_FOUND: "
        'Tier "platinum" not found\n'
        "7/8 rows done, 4 failed\n"
        "8/8 rows done, 4 failed\n"
    )
    assert state(engine, GOOD) == expected_state(GOOD)

    # Fixed, the file imports cleanly: the stale report goes away.
    fixed = write_jsonl(path, [*GOOD, org_row(93)])
    again = run([str(fixed), "--label", "Imported"], engine)
    assert again.status == 0
    assert again.out == (
        f"Imported {path}: 5 rows in T s\n"
        "  created              1\n"
        "  linked               0\n"
        "  already linked       4\n"
        "  failed               0\n"
        "  contacts             2 created, 8 updated\n"
    )
    assert not report.exists()
    rows = [*GOOD, org_row(93)]
    assert state(engine, rows) == expected_state(rows)


def test_every_format_through_the_command(tmp_path: Path, engine: LocalEngine) -> None:
    rows = [org_row(1, users=2), org_row(2, users=0)]
    (tmp_path / "orgs.json").write_text(json.dumps({"organisations": rows[:1]}), encoding="utf-8")
    users = json.dumps(rows[1]["users"])
    (tmp_path / "orgs.csv").write_text(
        "id,name,domain,plan,admin_email,created_at,users\n"
        f"org_2,Company 2,company2.example,pro,admin@company2.example,{rows[1]['createdAt']},"
        f'"{users}"\n',
        encoding="utf-8",
    )
    (tmp_path / "orgs.txt").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    assert run([str(tmp_path / "orgs.json")], engine).status == 0
    assert run([str(tmp_path / "orgs.csv")], engine).status == 0
    again = run([str(tmp_path / "orgs.txt"), "--format", "jsonl"], engine)
    assert (again.status, again.recorder.procedures()) == (0, ["onboard", "contacts.bulkUpsert"])
    assert state(engine, rows) == expected_state(rows)


def test_dry_run_checks_every_row_and_sends_nothing(
    tmp_path: Path, engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_API_KEY")  # not needed: nothing is sent
    path = write_jsonl(tmp_path / "orgs.jsonl", MIXED)
    result = run([str(path), "--dry-run"], engine)
    report = Path(f"{path}.failed.jsonl")
    assert (result.status, result.recorder.calls) == (1, [])
    assert result.out == (
        f"Dry run of {path}: 8 rows, 5 valid, 3 invalid; nothing was sent.\n"
        f"Invalid rows: see {report}\n"
    )
    assert read_report(report) == REPORT[:3]
    assert result.err == (
        "failed row 2, line 2: id: is required\n"
        "failed row 4, line 4, id org_91: adminEmail: must be a string, got int\n"
        "failed row 6, line 6, id org_92: createdAt: must be an ISO-8601 timestamp with a UTC "
        "offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-02-30T00:00:00Z'\n"
    )

    clean = write_jsonl(tmp_path / "clean.jsonl", GOOD)
    result = run([str(clean), "--dry-run", "--report", str(report)], engine)
    assert (result.status, result.recorder.calls) == (0, [])
    assert result.out == f"Dry run of {clean}: 4 rows, 4 valid, 0 invalid; nothing was sent.\n"
    assert not report.exists()
    assert state(engine, GOOD) == {row["id"]: None for row in GOOD}


SURROGATE = "contains a lone surrogate (U+D800 at position 1), which cannot be sent as UTF-8"
UNSENDABLE = [
    GOOD[0],
    changed(org_row(94), id="org_\ud800"),
    changed(org_row(95), users=[{"email": "x\ud800@y.com"}]),
    GOOD[1],
]
UNSENDABLE_REPORT = [
    {
        "row": 2,
        "line": 2,
        "id": "org_\ud800",
        "stage": "validate",
        "error": "InvalidInputError",
        "code": None,
        "message": f"id: {SURROGATE.replace('position 1', 'position 4')}",
    },
    {
        "row": 3,
        "line": 3,
        "id": "org_95",
        "stage": "validate",
        "error": "InvalidInputError",
        "code": None,
        "message": f"users[0].email: {SURROGATE}",
    },
]


@pytest.mark.parametrize("dry_run", [False, True])
def test_text_that_is_not_utf8_fails_its_row(
    tmp_path: Path, engine: LocalEngine, dry_run: bool
) -> None:
    """A lone surrogate (``"\\ud800"`` in the file) fails its row; the report still reads back."""
    path = write_jsonl(tmp_path / "orgs.jsonl", UNSENDABLE)
    result = run([str(path), *(["--dry-run"] if dry_run else [])], engine)
    assert result.status == 1
    report = Path(f"{path}.failed.jsonl")
    assert read_report(report) == UNSENDABLE_REPORT
    assert "\\ud800" in report.read_text(encoding="utf-8")  # the JSON escape, as in the file
    assert [line for line in result.err.splitlines() if line.startswith("failed")] == [
        f"failed row 2, line 2, id org_\ud800: {UNSENDABLE_REPORT[0]['message']}",
        f"failed row 3, line 3, id org_95: {UNSENDABLE_REPORT[1]['message']}",
    ]
    if dry_run:
        assert result.out.startswith(f"Dry run of {path}: 4 rows, 2 valid, 2 invalid;")
        assert result.recorder.calls == []
    else:
        assert result.out.splitlines()[1:5] == [
            "  created              2",
            "  linked               0",
            "  already linked       0",
            f"  failed               2   see {report}",
        ]
        assert state(engine, GOOD[:2]) == expected_state(GOOD[:2])


def test_the_import_command_loads_nothing_of_the_local_server(tmp_path: Path) -> None:
    """``chatarmin-os import`` is a client: its parser leaves ``serve`` and ``catalog`` out."""
    path = write_jsonl(tmp_path / "orgs.jsonl", GOOD)
    code = (
        "import sys\n"
        "from chatarmin_os.cli import main\n"
        f"status = main(['import', '--dry-run', {str(path)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('chatarmin_os.local'))\n"
        "print(status, loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines()[-1] == "0 []"


def test_stdin_and_an_explicit_report(
    tmp_path: Path, engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = "".join(json.dumps(row) + "\n" for row in MIXED[:2])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    result = run(["-", "--format", "jsonl"], engine)
    assert result.status == 1
    assert result.out.startswith("Imported stdin: 2 rows in T s\n")
    assert read_report(tmp_path / "import.failed.jsonl") == REPORT[:1]

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    result = run(["-", "--format", "jsonl", "--report", "bad.jsonl"], engine)
    assert read_report(tmp_path / "bad.jsonl") == REPORT[:1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["{tmp}/missing.jsonl"], "cannot read '{tmp}/missing.jsonl': No such file or directory"),
        (
            ["{tmp}/orgs.xlsx"],
            "cannot tell the format of '{tmp}/orgs.xlsx' from its extension (.json, .jsonl, .ndjson or .csv); give the format",
        ),
        (
            ["{tmp}/broken.json"],
            "'{tmp}/broken.json': not valid JSON: Expecting value (line 1, column 1)",
        ),
        (["-"], "reading stdin needs --format"),
        (
            ["{tmp}/orgs.jsonl", "--report", "{tmp}/orgs.jsonl"],
            "--report must not be the input file",
        ),
        (
            ["{tmp}/orgs.jsonl", "--report", "{tmp}/no/such/dir/r.jsonl"],
            "cannot write the report '{tmp}/no/such/dir/r.jsonl': No such file or directory",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, engine: LocalEngine, argv: list[str], message: str
) -> None:
    write_jsonl(tmp_path / "orgs.jsonl", GOOD)
    (tmp_path / "orgs.xlsx").write_bytes(b"PK")
    (tmp_path / "broken.json").write_text("", encoding="utf-8")
    result = run([arg.format(tmp=tmp_path) for arg in argv], engine)
    assert (result.status, result.out, result.recorder.calls) == (2, "", [])
    assert result.err == f"chatarmin-os import: {message.format(tmp=tmp_path)}\n"


def test_no_api_key_is_a_usage_error(
    tmp_path: Path, engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_API_KEY")
    result = run([str(write_jsonl(tmp_path / "orgs.jsonl", GOOD))], engine)
    assert (result.status, result.out, result.recorder.calls) == (2, "", [])
    assert result.err.startswith("chatarmin-os import: No API key: ")
    assert result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--concurrency=0", "argument --concurrency: must be from 1 to 100, got 0"),
        ("--concurrency=many", "argument --concurrency: not a number: 'many'"),
        ("--label= ", "argument --label: must not be empty"),
        ("--format=xml", "argument --format: invalid choice: 'xml' (choose from json, jsonl, csv)"),
    ],
)
def test_bad_flags_exit_2(flag: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["import", "orgs.jsonl", flag])
    assert info.value.code == 2
    err = capsys.readouterr().err
    line = f"chatarmin-os import: {message} (see chatarmin-os import --help)"
    assert err.splitlines() == [line] or err.splitlines() == [
        # Python < 3.12 quotes the choices
        line.replace("json, jsonl, csv", "'json', 'jsonl', 'csv'")
    ]


def test_help_says_where_the_key_comes_from(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["import", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "The API key is read from OS_API_KEY, never from a flag" in text
    assert "--concurrency N rows in flight at once, 1 to 100 (default 8)" in text


def _interrupt_on_row(number: int, err: io.StringIO, *, twice: bool) -> Hook:
    """Ctrl-C while row ``number``'s onboard is in flight; hold it until the stop is seen."""

    async def hook(path: str, payload: Any) -> None:
        if path != "onboard" or payload["externalOrgId"] != f"org_{number}":
            return
        os.kill(os.getpid(), signal.SIGINT)
        while "Stopping" not in err.getvalue():
            await anyio.lowlevel.checkpoint()
        if twice:
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.Event().wait()  # abandoned: cancelled by the second Ctrl-C

    return hook


def test_ctrl_c_finishes_the_rows_in_flight_and_exits_130(
    tmp_path: Path, engine: LocalEngine
) -> None:
    rows = [org_row(n) for n in range(1, 11)]
    path = write_jsonl(tmp_path / "orgs.jsonl", rows)
    err = io.StringIO()
    result = run(
        [str(path), "--concurrency", "1"], engine, _interrupt_on_row(3, err, twice=False), err
    )
    assert result.status == 130
    assert result.out == (
        f"Interrupted: 3 of 10 rows of {path} done in T s; run the same command again to resume.\n"
        "  created              3\n"
        "  linked               0\n"
        "  already linked       0\n"
        "  failed               0\n"
        "  not done             7\n"
        "  contacts             6 created, 0 updated\n"
    )
    assert "Stopping: finishing the rows in flight (Ctrl-C again to abandon them)\n" in result.err
    assert sum(s is not None for s in state(engine, rows).values()) == 3

    resumed = run([str(path)], engine)
    assert (resumed.status, resumed.out.splitlines()[1:4]) == (
        0,
        ["  created              7", "  linked               0", "  already linked       3"],
    )
    assert state(engine, rows) == expected_state(rows)


def test_a_second_ctrl_c_abandons_the_rows_in_flight(tmp_path: Path, engine: LocalEngine) -> None:
    rows = [org_row(n) for n in range(1, 6)]
    path = write_jsonl(tmp_path / "orgs.jsonl", rows)
    err = io.StringIO()
    result = run(
        [str(path), "--concurrency", "1"], engine, _interrupt_on_row(2, err, twice=True), err
    )
    assert result.status == 130
    assert result.out.splitlines()[0] == (
        f"Interrupted: 1 of 5 rows of {path} done in T s; run the same command again to resume."
    )
    assert "  not done             4" in result.out.splitlines()
    assert result.err.endswith("Abandoning the rows in flight\n")
    assert run([str(path)], engine).status == 0
    assert state(engine, rows) == expected_state(rows)


def test_the_progress_bar_on_a_terminal() -> None:
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(stream, 4, tty=True, clock=lambda: now[0])
    tally = ImportSummary()

    def finish(status: Any, seconds: float) -> None:
        now[0] += seconds
        row = tally.done + 1
        if status == "failed":
            error = InvalidInputError("adminEmail", "must be an e-mail address")
            result = RowResult(row, row + 1, f"org_{row}", status, stage="validate", error=error)
        else:
            result = RowResult(row, row + 1, f"org_{row}", status)
        tally.add(result)
        progress.update(result, tally)

    finish("created", 0.5)
    finish("created", 0.05)  # too soon after the last drawing: not redrawn
    finish("failed", 0.5)
    finish("linked", 0.01)  # the last row is always drawn
    progress.close()
    bar = "\r\x1b[K"
    assert stream.getvalue() == (
        f"{bar}[#######.......................] 1/4 rows, 0 failed, 2 rows/s"
        f"{bar}failed row 3, line 4, id org_3: adminEmail: must be an e-mail address\n"
        f"{bar}[######################........] 3/4 rows, 1 failed, 3 rows/s"
        f"{bar}[##############################] 4/4 rows, 1 failed, 4 rows/s"
        f"{bar}"
    )


def test_a_refused_key_stops_the_command(
    tmp_path: Path, engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_API_KEY", "os_sk_wrong")
    path = write_jsonl(tmp_path / "orgs.jsonl", GOOD)
    result = run([str(path), "--concurrency", "1"], engine)
    assert result.status == 1
    out = re.sub(r" \[request_id: req_[0-9a-f]{24}\]\n", " [request_id: ID]\n", result.out)
    assert out == (
        f"Stopped after 1 of 4 rows of {path}: 401 UNAUTHORIZED on onboard: Invalid API key"
        " [request_id: ID]\n"
        "  created              0\n"
        "  linked               0\n"
        "  already linked       0\n"
        f"  failed               1   see {path}.failed.jsonl\n"
        "  not done             3\n"
        "  contacts             0 created, 0 updated\n"
    )
    assert "os_sk_wrong" not in result.out + result.err
    assert "os_sk_wrong" not in Path(f"{path}.failed.jsonl").read_text()


def test_stderr_shows_the_first_20_failed_rows(tmp_path: Path, engine: LocalEngine) -> None:
    path = write_jsonl(tmp_path / "orgs.jsonl", [{"name": f"No id {n}"} for n in range(25)])
    result = run([str(path), "--dry-run"], engine)
    lines = result.err.splitlines()
    assert lines == [
        *(f"failed row {n}, line {n}: id: is required" for n in range(1, 21)),
        "more failed rows: see the report",
    ]
    assert len(read_report(Path(f"{path}.failed.jsonl"))) == 25
