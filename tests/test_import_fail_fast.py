"""``chatarmin-os import`` against a real ``chatarmin-os serve``, misconfigured as people do.

A wrong base URL, an answer that is not tRPC, a wrong or missing key: the run stops after the
first rows (never more than 20, whatever ``--concurrency``) with one line on stderr naming
the cause and the URL. A ``;``- or tab-separated CSV and ``Id,Name`` headers import; a
truncated JSON file is named; the last progress line agrees with the summary.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatarmin_os import AsyncChatarminOS, ChatarminOS, NotFoundError
from chatarmin_os.importer import FIRST_WAVE, import_organisations, stop_reason
from chatarmin_os.local import DEFAULT_API_KEY, LocalEngine
from chatarmin_os.local.transport import AsyncLocalTransport
from tests.support.cli_process import KEY, run_cli, serve
from tests.support.import_data import Recorder, actual_state, expected_state, org_row
from tests.support.serve_process import ServeProcess

__all__ = ["serve"]  # the fixture, used by name

ROWS = 500


def write_csv(path: Path, count: int, *, start: int = 1, sep: str = ",", header: str = "") -> Path:
    columns = header or sep.join(["id", "name", "domain", "plan", "adminEmail", "createdAt"])
    lines = [columns]
    for n in range(start, start + count):
        row = org_row(n, users=0)
        lines.append(
            sep.join(
                str(row[key]) for key in ("id", "name", "domain", "plan", "adminEmail", "createdAt")
            )
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stopped(done: Any) -> int:
    """How many rows the run finished before it stopped (from the summary's first line)."""
    match = re.match(r"Stopped after (\d+) of (\d+) rows of ", done.out)
    assert match, done.out
    return int(match[1])


def report_lines(path: Path) -> list[dict[str, Any]]:
    report = Path(f"{path}.failed.jsonl")
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


def error_lines(err: str) -> list[str]:
    """stderr without the progress lines."""
    return [line for line in err.splitlines() if not re.fullmatch(r"\d+/\d+ rows done.*", line)]


@pytest.mark.parametrize("concurrency", ["8", "100"])
def test_a_wrong_base_url_path_stops_within_20_rows_with_one_line(
    tmp_path: Path, serve: ServeProcess, concurrency: str
) -> None:
    path = write_csv(tmp_path / "orgs.csv", ROWS)
    wrong = serve.base_url.removesuffix("/v1")  # .../api instead of .../api/v1
    done = run_cli(
        ["import", str(path), "--base-url", wrong, "--concurrency", concurrency],
        {"OS_API_KEY": KEY},
    )
    assert done.status == 1, done
    assert 1 <= stopped(done) <= 20
    assert len(report_lines(path)) == stopped(done)
    assert error_lines(done.err) == [
        f"chatarmin-os import: stopped: no procedure 'onboard' at {wrong}/onboard "
        "(404 NOT_FOUND); the base URL is wrong: check --base-url / CHATARMIN_OS_BASE_URL "
        "(it usually ends in /api/v1)"
    ]
    # The last progress line agrees with the summary.
    assert done.err.splitlines()[-1] == f"{stopped(done)}/{ROWS} rows done, {stopped(done)} failed"


def test_a_wrong_key_stops_with_one_line_naming_os_api_key(
    tmp_path: Path, serve: ServeProcess
) -> None:
    path = write_csv(tmp_path / "orgs.csv", ROWS, start=1000)
    done = run_cli(
        ["import", str(path), "--concurrency", "50"],
        {"OS_API_KEY": "os_sk_revoked", "CHATARMIN_OS_BASE_URL": serve.base_url},
    )
    assert done.status == 1, done
    assert 1 <= stopped(done) <= 20
    assert error_lines(done.err) == [
        f"chatarmin-os import: stopped: the API at {serve.base_url}/onboard refused the API "
        "key (401 UNAUTHORIZED: Invalid API key); set OS_API_KEY to a valid key for this API"
    ]
    assert "os_sk_revoked" not in done.out + done.err


def test_a_missing_key_names_os_api_key(tmp_path: Path, serve: ServeProcess) -> None:
    path = write_csv(tmp_path / "orgs.csv", 3)
    done = run_cli(["import", str(path), "--base-url", serve.base_url])
    assert (done.status, done.out) == (2, "")
    [line] = done.err.splitlines()
    assert line.startswith("chatarmin-os import: No API key: set the OS_API_KEY environment ")
    assert "api_key=" not in line


@pytest.fixture
def web_page() -> Iterator[str]:
    """An HTTP server that answers every request with an HTML page (status 200)."""

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            body = b"<html><body>Welcome</body></html>"
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_that_is_not_trpc_stops_with_one_line(tmp_path: Path, web_page: str) -> None:
    path = write_csv(tmp_path / "orgs.csv", ROWS)
    done = run_cli(
        ["import", str(path), "--base-url", web_page, "--concurrency", "100"], {"OS_API_KEY": KEY}
    )
    assert done.status == 1, done
    assert 1 <= stopped(done) <= 20
    assert error_lines(done.err) == [
        f"chatarmin-os import: stopped: the answer at {web_page}/onboard is not a ChatarminOS "
        "(tRPC) answer (HTTP 200, text/html); check --base-url / CHATARMIN_OS_BASE_URL "
        "(it usually ends in /api/v1)"
    ]


@pytest.mark.parametrize(("sep", "name"), [(";", "';' (semicolons)"), ("\t", "tabs")])
def test_semicolon_and_tab_separated_csv_with_any_case_headers_import(
    tmp_path: Path, serve: ServeProcess, sep: str, name: str
) -> None:
    start = 2000 if sep == ";" else 3000
    header = sep.join(["Id", "NAME", "Domain", "plan", "AdminEmail", "created_at"])
    path = write_csv(tmp_path / "orgs.csv", 15, start=start, sep=sep, header=header)
    done = run_cli(
        ["import", str(path)], {"OS_API_KEY": KEY, "CHATARMIN_OS_BASE_URL": serve.base_url}
    )
    assert done.status == 0, done
    lines = done.err.splitlines()
    assert lines[0] == (
        f"chatarmin-os import: note: {str(path)!r} is separated by {name}, not commas: read it so"
    )
    # 15 rows: a line every 2 rows, and always one for the last (it agrees with the summary).
    assert lines[-1] == "15/15 rows done, 0 failed"
    assert done.out.splitlines()[1] == "  created             15"
    rows = [org_row(n, users=0) for n in range(start, start + 15)]
    with ChatarminOS(api_key=KEY, base_url=serve.base_url) as client:
        assert actual_state(client, [row["id"] for row in rows]) == expected_state(rows)


def test_a_header_that_still_lacks_a_column_names_the_separator(tmp_path: Path) -> None:
    path = tmp_path / "orgs.csv"
    path.write_text("org;title;domain\norg_1;Acme;acme.example\n", encoding="utf-8")
    done = run_cli(["import", str(path), "--dry-run"])
    assert (done.status, done.out) == (2, "")
    assert done.err == (
        f"chatarmin-os import: {str(path)!r}: the CSV header has no 'id' column "
        "(it has: org;title;domain); it looks separated by ';' (semicolons): CSV here is "
        "comma-separated\n"
    )


def test_a_truncated_json_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "orgs.json"
    path.write_text(json.dumps([org_row(1), org_row(2)], indent=1)[:-40], encoding="utf-8")
    done = run_cli(["import", str(path)], {"OS_API_KEY": KEY})
    assert (done.status, done.out) == (2, "")
    [line] = done.err.splitlines()
    assert line.startswith(f"chatarmin-os import: {str(path)!r}: not valid JSON: ")
    assert line.endswith("; the file ends too early: is it cut short?)")


async def test_the_library_stops_within_the_first_wave_too() -> None:
    """``import_organisations`` itself: a wrong path fails at most FIRST_WAVE rows, even at
    ``concurrency=50``, and ``stop_reason`` says why in one line."""
    engine = LocalEngine()
    recorder = Recorder(AsyncLocalTransport(engine))
    rows = [org_row(n, users=0) for n in range(1, 201)]
    try:
        async with httpx.AsyncClient(transport=recorder) as http:
            client = AsyncChatarminOS(
                api_key=DEFAULT_API_KEY, base_url="http://import.test/api", http_client=http
            )
            summary = await import_organisations(client, rows, concurrency=50)
    finally:
        engine.close()
    assert isinstance(summary.stopped_by, NotFoundError)
    assert summary.failed == len(recorder.calls) <= FIRST_WAVE == 8
    assert summary.not_started == 200 - summary.failed
    assert stop_reason(summary.stopped_by) == (
        "no procedure 'onboard' at http://import.test/api/onboard (404 NOT_FOUND); the base URL "
        "is wrong: check --base-url / CHATARMIN_OS_BASE_URL (it usually ends in /api/v1)"
    )


def test_client_commands_load_nothing_of_the_local_server() -> None:
    code = (
        "import sys\n"
        "from chatarmin_os.cli import main\n"
        "for command in (['tiers', 'list'], ['codegen'], ['features', 'list', '--org', 'o']):\n"
        "    main(command)\n"
        "print(sorted(m for m in sys.modules if m.startswith('chatarmin_os.local')))\n"
    )
    done = run_cli([], {"OS_API_KEY": KEY, "CHATARMIN_OS_BASE_URL": "http://127.0.0.1:9/api/v1"})
    assert done.status == 2  # no command: a usage error
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OS_API_KEY": KEY, "CHATARMIN_OS_BASE_URL": "http://127.0.0.1:9/api/v1"},
    )
    assert result.stdout.splitlines()[-1] == "[]", result.stdout + result.stderr
