"""The real ``chatarmin-os import`` command against a real ``chatarmin-os serve``.

A run is killed (SIGKILL) mid-way, a second one is interrupted with Ctrl-C (SIGINT), a third
finishes: the server ends up with exactly the companies and contacts of the file's good
rows, and the report names exactly the bad rows. To stop the runs at a known point without
sleeping, they go through a small proxy that forwards a given number of requests and holds
the rest until released.
"""

from __future__ import annotations

import csv
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from chatarmin_os import ChatarminOS
from tests.support.import_data import actual_state, changed, expected_state, org_row
from tests.support.serve_process import ROOT, ServeProcess

KEY = "os_sk_import_e2e"
DEADLINE = 30.0
COMMAND = Path(sys.executable).with_name("chatarmin-os")


class HoldingProxy:
    """Forwards requests to ``target``; after :meth:`hold_after` N of them, holds the rest."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.http = httpx.Client(timeout=DEADLINE)
        self.lock = threading.Condition()
        self.allowed = float("inf")
        self.forwarded = 0
        self.active = 0
        self.held = threading.Event()
        self.released = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.forward(self)

            def do_POST(self) -> None:
                proxy.forward(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hold_after(self, count: int) -> None:
        with self.lock:
            self.allowed = self.forwarded + count
            self.held.clear()
            self.released.clear()

    def release(self) -> None:
        """Forward the held requests and everything after."""
        with self.lock:
            self.allowed = float("inf")
        self.released.set()

    def wait_idle(self) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: self.active == 0, timeout=DEADLINE)

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        with self.lock:
            self.active += 1
            hold = self.forwarded >= self.allowed
            self.forwarded += 1
        try:
            if hold:
                self.held.set()
                assert self.released.wait(DEADLINE)
            headers = {
                name: handler.headers[name]
                for name in ("Authorization", "Content-Type")
                if handler.headers[name]
            }
            answer = self.http.request(
                handler.command, self.target + handler.path, content=body, headers=headers
            )
            handler.send_response(answer.status_code)
            handler.send_header("Content-Type", answer.headers["content-type"])
            handler.send_header("Content-Length", str(len(answer.content)))
            handler.end_headers()
            handler.wfile.write(answer.content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the importer is gone; the server did the work all the same
        finally:
            with self.lock:
                self.active -= 1
                self.lock.notify_all()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


class ImportProcess:
    """``chatarmin-os import ...`` running; stderr read line by line, stdout to a file."""

    def __init__(self, args: Sequence[str], workdir: Path) -> None:
        assert COMMAND.exists(), f"{COMMAND} is missing: run uv sync"
        self.stdout_path = workdir / f"import-stdout-{time.monotonic_ns()}.txt"
        env = {"OS_API_KEY": KEY, "PATH": "/usr/bin:/bin"}
        with self.stdout_path.open("w") as stdout:
            self.process = subprocess.Popen(
                [str(COMMAND), "import", *args],
                stdout=stdout,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env=env,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stderr is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, text: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, f"stderr ended without {text!r}: {self.stderr}"
            self.stderr.append(line)
            if line.startswith(text):
                return

    def finish(self) -> tuple[int, str]:
        status = self.process.wait(timeout=DEADLINE)
        self.reader.join(timeout=DEADLINE)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return status, self.stdout_path.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    serve = ServeProcess.start(["--api-key", KEY], tmp_path)
    try:
        yield serve
    finally:
        serve.kill()


def csv_file(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    columns = ["id", "name", "domain", "plan", "adminEmail", "createdAt", "users"]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        for row in rows:
            cells = [row.get(column, "") for column in columns[:-1]]
            writer.writerow([*cells, json.dumps(row["users"]) if row.get("users") else ""])


def test_killed_interrupted_and_resumed_import_ends_exact(
    tmp_path: Path, server: ServeProcess
) -> None:
    good = [org_row(n, users=n % 4) for n in range(1, 181)]
    bad = {
        20: changed(org_row(900), id=...),
        60: changed(org_row(901), adminEmail="nobody"),
        100: changed(org_row(902), createdAt="2022-03-01"),
        140: changed(org_row(903), plan="platinum"),
    }
    rows: list[dict[str, Any]] = []
    for row in good:
        if len(rows) + 1 in bad:
            rows.append(bad[len(rows) + 1])
        rows.append(row)
    path = tmp_path / "orgs.csv"
    csv_file(path, rows)
    proxy = HoldingProxy(server.origin)
    args = [str(path), "--concurrency", "8", "--base-url"]
    try:
        # 1. Killed outright while some requests are in flight.
        proxy.hold_after(90)
        killed = ImportProcess([*args, proxy.base_url], tmp_path)
        assert proxy.held.wait(DEADLINE)
        killed.kill()
        proxy.release()  # what was in flight still reaches the server
        proxy.wait_idle()

        # 2. Ctrl-C: no new rows, the rows in flight finish, exit 130.
        proxy.hold_after(200)
        interrupted = ImportProcess([*args, proxy.base_url], tmp_path)
        assert proxy.held.wait(DEADLINE)
        interrupted.process.send_signal(signal.SIGINT)
        interrupted.wait_for_line("Stopping: finishing the rows in flight")
        proxy.release()
        status, out = interrupted.finish()
        assert status == 130, (out, interrupted.stderr)
        assert out.startswith("Interrupted: "), out
        assert "run the same command again to resume." in out
    finally:
        proxy.close()

    with ChatarminOS(api_key=KEY, base_url=server.base_url) as client:
        partial = actual_state(client, [row["id"] for row in good])
        done = sum(snapshot is not None for snapshot in partial.values())
        assert 0 < done < len(good)

        # 3. Run to the end, straight to the server.
        finished = ImportProcess([*args, server.base_url], tmp_path)
        status, out = finished.finish()
        assert status == 1, (out, finished.stderr)
        lines = out.splitlines()
        assert lines[0].startswith(f"Imported {path}: 184 rows in ")
        assert lines[1:] == [
            f"  created         {len(good) - done:>6}",
            "  linked               0",
            f"  already linked  {done:>6}",
            f"  failed               4   see {path}.failed.jsonl",
            lines[5],
        ]
        contacts = re.fullmatch(r"  contacts +(\d+) created, (\d+) updated", lines[5])
        assert contacts is not None, lines[5]
        # Every good row's users were upserted once more by this run.
        assert int(contacts[1]) + int(contacts[2]) == sum(len(row["users"]) for row in good)
        report = [
            json.loads(line) for line in Path(f"{path}.failed.jsonl").read_text().splitlines()
        ]
        assert report == [
            {
                "row": 20,
                "line": 21,
                "id": None,
                "stage": "validate",
                "error": "InvalidInputError",
                "code": None,
                "message": "id: is required",
            },
            {
                "row": 60,
                "line": 61,
                "id": "org_901",
                "stage": "validate",
                "error": "InvalidInputError",
                "code": None,
                "message": "adminEmail: must be an e-mail address, got 'nobody'",
            },
            {
                "row": 100,
                "line": 101,
                "id": "org_902",
                "stage": "validate",
                "error": "InvalidInputError",
                "code": None,
                "message": "createdAt: must be an ISO-8601 timestamp with a UTC offset, e.g. '2024-01-15T10:30:00.000Z', got '2022-03-01'",
            },
            {
                "row": 140,
                "line": 141,
                "id": "org_903",
                "stage": "onboard",
                "error": "NotFoundError",
                "code": "NOT_FOUND",
                "message": 'Tier "platinum" not found',
            },
        ]

        # Exactly the good rows' companies and contacts: nothing missing, nothing twice.
        final = actual_state(client, [row["id"] for row in good])
        assert final == expected_state(good)
        assert actual_state(client, ["org_901", "org_902", "org_903"]) == dict.fromkeys(
            ["org_901", "org_902", "org_903"]
        )
        companies = [client.companies.get_by_product_link(external_org_id=r["id"]) for r in good]
        assert len({company.id for company in companies if company is not None}) == len(good)
        assert client.links.reset().links_deleted == len(good)
