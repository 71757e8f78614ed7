#!/usr/bin/env python3
"""The local ChatarminOS against the Node reference router, and its in-process speed.

    uv run python benchmarks/bench_local_server.py            # ~1 minute
    uv run python benchmarks/bench_local_server.py --quick    # a smoke run (CI): seconds

1. **Over HTTP.** ``chatarmin-os serve`` (with a database file, as a developer runs it;
   ``--memory`` for an in-memory one) and the Node reference router
   (``tests/conformance/server.mjs``: a real ``@trpc/server`` v11 answering the same procedures,
   zod-validated, with canned outputs) are both started here on 127.0.0.1. A load generator
   (asyncio, raw HTTP/1.1 keep-alive connections, requests encoded up front, so the client
   costs as little as possible) sends ``features.check`` (GET) and ``billing.trackUsage``
   (POST, a fresh idempotency key each time) at concurrency 1 and 50, alternating between the
   two servers round by round. Printed: the median requests/s of each and the ratio ours /
   Node. Targets: ``track_usage`` >= 1.0x, ``features.check`` >= 1.5x.
2. **In-process.** ``ChatarminOS.local()`` calls/s (``features.check``, ``track_usage``) now,
   against the same code as it was before the local server's rework (commit
   :data:`BASELINE_COMMIT`, taken from git into a temporary folder and run in a subprocess
   the same way), alternating. Also the server side alone (``LocalTransport.handle_request``
   with a ready request). Target: ``.local()`` >= 3x its calls/s before. Without git history
   (an sdist) the baseline is skipped.

The machine is shared and timings are noisy: compare the ratios, measured in the same run,
not the absolute numbers. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.reference_server

from tests.support.reference_server import ReferenceServer, ReferenceServerError  # noqa: E402

BASELINE_COMMIT = "faf24e8"
"""The last commit before the local server's rework (issue 9): the in-process baseline."""

API_KEY = "os_sk_bench"
Request = Callable[[int], bytes]


# -- the load generator --------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            await reader.readexactly(size + 2)
    elif length > 0:
        await reader.readexactly(length)
    return status


async def _connection(
    port: int, request: Request, first: int, count: int, statuses: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for number in range(first, first + count):
            writer.write(request(number))
            status = await _read_response(reader)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(port: int, request: Request, concurrency: int, total: int, offset: int) -> float:
    """Requests/s of ``total`` requests over ``concurrency`` keep-alive connections."""
    per = max(1, total // concurrency)
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, request, offset + i * per, per, statuses) for i in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"port {port}: unexpected answers {statuses}")
    return per * concurrency / elapsed


def check_request(company_id: str) -> Request:
    query = quote(
        json.dumps({"companyId": company_id, "featureCode": "ai_credit"}, separators=(",", ":")),
        safe="",
    )
    raw = (
        f"GET /api/v1/features.check?input={query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {API_KEY}\r\n\r\n"
    ).encode()
    return lambda number: raw


def track_request(company_id: str, run: str) -> Request:
    head = (
        "POST /api/v1/billing.trackUsage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
    )
    prefix = (
        '{"companyId":"' + company_id + '","featureCode":"ai_credit","quantity":1,'
        '"idempotencyKey":"' + run
    )

    def make(number: int) -> bytes:
        body = f'{prefix}-{number}"}}'.encode()
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    return make


# -- the servers ---------------------------------------------------------------------------


class LocalServer:
    """``chatarmin-os serve`` on a free port."""

    def __init__(self, database: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chatarmin_os.cli",
                "serve",
                "--port",
                "0",
                "--api-key",
                API_KEY,
                *(["--db", database] if database else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        if "http://" not in banner:
            self.stop()
            raise RuntimeError(f"chatarmin-os serve did not start: {banner!r}")
        self.port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _setup_company(port: int) -> str:
    import httpx

    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        company = http.post(f"{base}/companies.create", json={"name": "Bench Inc"})
        company_id: str = company.json()["result"]["data"]["id"]
        http.post(
            f"{base}/tiers.applyTier", json={"tierCode": "enterprise", "companyId": company_id}
        ).raise_for_status()  # ai_credit unlimited: every trackUsage is counted
    return company_id


def bench_http(rounds: int, total: int, database: str) -> list[tuple[str, int, float, float]]:
    try:
        node = ReferenceServer.start("json")
    except ReferenceServerError as error:
        print(f"  skipped: {error}")
        return []
    local = LocalServer(database)
    try:
        ours_id = _setup_company(local.port)
        servers = {"ours": (local.port, ours_id), "node": (node.port or 0, "comp_bench")}
        results: list[tuple[str, int, float, float]] = []
        for name in ("features.check", "track_usage"):
            for concurrency in (1, 50):
                rates: dict[str, list[float]] = {"ours": [], "node": []}
                for round_number in range(rounds + 1):  # round 0 warms up
                    for who, (port, company_id) in servers.items():
                        request = (
                            check_request(company_id)
                            if name == "features.check"
                            else track_request(company_id, f"r{round_number}c{concurrency}")
                        )
                        rate = _run(_load(port, request, concurrency, total, 0))
                        if round_number:
                            rates[who].append(rate)
                    node.reset()  # the reference server records every call: keep it small
                ours, theirs = statistics.median(rates["ours"]), statistics.median(rates["node"])
                results.append((name, concurrency, ours, theirs))
                print(
                    f"  {name:15} c={concurrency:<3} ours {ours:8.0f}/s   node {theirs:8.0f}/s"
                    f"   ratio {ours / theirs:5.2f}x"
                )
        return results
    finally:
        local.stop()
        node.stop()


def _run(coroutine: object) -> float:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    return uvloop.run(coroutine)  # type: ignore[arg-type]


# -- in-process ----------------------------------------------------------------------------

_IN_PROCESS = textwrap.dedent(
    """
    import json, sys, time
    from chatarmin_os import ChatarminOS
    from chatarmin_os.local import LocalEngine
    from chatarmin_os.local.transport import LocalTransport

    calls = int(sys.argv[1])
    engine = LocalEngine()
    client = ChatarminOS.local(engine)
    company_id = client.companies.create(name="Bench Inc").id
    client.tiers.apply("enterprise", company_id=company_id)
    transport = LocalTransport(engine)
    payload = {"companyId": company_id, "featureCode": "ai_credit"}
    if hasattr(client, "_build_request"):  # the code before the rework
        request = client._build_request("features.check", payload)
    else:
        request = client._request_for([client._prepare("features.check", payload)])
    if hasattr(request, "to_httpx"):  # the request loop's own request object
        request = request.to_httpx()

    def rate(call):
        for _ in range(calls // 10):
            call()
        started = time.perf_counter()
        for _ in range(calls):
            call()
        return calls / (time.perf_counter() - started)

    results = {
        "features.check": rate(
            lambda: client.features.check(company_id=company_id, feature_code="ai_credit")
        ),
        "track_usage": rate(
            lambda: client.billing.track_usage(
                company_id=company_id, feature_code="ai_credit", quantity=1
            )
        ),
        "server side (handle_request)": rate(lambda: transport.handle_request(request)),
    }
    if hasattr(transport, "answer"):  # the fast path a client bound to it can take
        from chatarmin_os import FeatureAccess
        from chatarmin_os._wire import encode_request

        headers = {"authorization": "Bearer os_sk_local_dev"}
        payload = {"companyId": company_id, "featureCode": "ai_credit"}

        def fast():
            encoded = encode_request("query", "features.check", payload, transformer="json")
            answer = transport.answer(encoded.method, encoded.url, headers, encoded.content)
            data = json.loads(answer.body)["result"]["data"]
            return FeatureAccess.model_validate(data)

        results["features.check via answer()"] = rate(fast)
    print(json.dumps(results))
    """
)


def _in_process(source: Path, calls: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    output = subprocess.run(
        [sys.executable, "-c", _IN_PROCESS, str(calls)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def _baseline_tree(folder: Path) -> Path | None:
    """``src`` of :data:`BASELINE_COMMIT`, extracted into ``folder`` (None without git)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "src/chatarmin_os"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return folder / "src"


def bench_in_process(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        baseline = _baseline_tree(Path(folder))
        if baseline is None:
            print(f"  (no git history: the baseline {BASELINE_COMMIT} is skipped)")
        now: dict[str, list[float]] = {}
        before: dict[str, list[float]] = {}
        for _ in range(rounds):
            for key, value in _in_process(ROOT / "src", calls).items():
                now.setdefault(key, []).append(value)
            if baseline is not None:
                for key, value in _in_process(baseline, calls).items():
                    before.setdefault(key, []).append(value)
        for key, values in now.items():
            ours = statistics.median(values)
            line = f"  {key:30} now {ours:8.0f}/s"
            baseline = key if key in before else key.split(" ")[0]  # answer(): vs .local()
            if baseline in before:
                then = statistics.median(before[baseline])
                line += f"   before {then:8.0f}/s   ratio {ours / then:5.2f}x"
            print(line)
        print(
            "  (answer(): encode, the local transport's answer(), decode, the model: what\n"
            "   ChatarminOS.local() costs once the client hands it the encoded request)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few, short rounds")
    parser.add_argument("--rounds", type=int, help="measured rounds per case (5; quick: 1)")
    parser.add_argument("--requests", type=int, help="requests per round (3000; quick: 200)")
    parser.add_argument(
        "--memory", action="store_true", help="serve from memory instead of a database file"
    )
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    total = args.requests or (200 if args.quick else 3000)
    with tempfile.TemporaryDirectory() as folder:
        database = "" if args.memory else str(Path(folder) / "bench.db")
        print(
            f"Over HTTP: chatarmin-os serve ({'memory' if args.memory else 'database file'}) "
            f"vs the Node reference router, {rounds} round(s) of {total} requests"
        )
        bench_http(rounds, total, database)
    print(f"In-process: ChatarminOS.local(), {rounds} round(s) of {total} calls")
    bench_in_process(rounds, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
