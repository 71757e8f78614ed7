"""Every answer of the local server carries an ``x-request-id``: in-process and over HTTP.

Success, tRPC error, batch (one id for all its calls), refusals before any procedure runs,
404s, ``/healthz``, the fault injector's answers; ``req_`` and 24 hex digits, a new one per
HTTP request, never the client's own; the access log and the DEBUG log name it.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatarmin_os.local import LocalEngine, ServerOptions
from chatarmin_os.local.asgi import create_app
from chatarmin_os.local.protocol import TRPCHandler, new_request_id
from chatarmin_os.local.transport import AsyncLocalTransport, LocalTransport
from chatarmin_os.testing import ChatarminOSServer, LocalChatarminOS
from tests.support.helpers import SERVER_KEY
from tests.support.serve_process import ServeProcess

KEY = SERVER_KEY
AUTH = {"authorization": f"Bearer {KEY}"}
JSON = {**AUTH, "content-type": "application/json"}
REQUEST_ID = re.compile(r"req_[0-9a-f]{24}")
CLIENT_ID = "req_000000000000000000000000"


def assert_id(value: str | None) -> str:
    assert value is not None and REQUEST_ID.fullmatch(value), value
    assert value != CLIENT_ID  # the client's own id is never echoed
    return value


# (method, path, query, headers, body, expected status) — one of every kind of answer
REQUESTS: list[tuple[str, str, str, dict[str, str], bytes, int]] = [
    ("GET", "/api/v1/tiers.list", "", AUTH, b"", 200),
    ("GET", "/api/v1/tiers.list/", "", AUTH, b"", 200),
    ("GET", "/api/v1/tiers.get", 'input={"tierCode":"nope"}', AUTH, b"", 404),
    ("GET", "/api/v1/tiers.list", "", {}, b"", 401),
    ("GET", "/api/v1/nope.nothing", "", AUTH, b"", 404),
    ("GET", "/elsewhere", "", AUTH, b"", 404),
    ("GET", "/api/v1/%zz", "", AUTH, b"", 400),
    ("POST", "/api/v1/companies.create", "", AUTH, b"{}", 415),
    ("POST", "/api/v1/companies.create", "", JSON, b'{"name": ', 400),
    ("POST", "/api/v1/companies.create", "", JSON, '{"name":"A"}'.encode("utf-16"), 400),
    ("POST", "/api/v1/companies.create", "", JSON, b'{"name":"A"}', 200),
    ("GET", "/api/v1/tiers.list,tiers.list", "batch=1", AUTH, b"", 200),
    ("GET", "/api/v1/tiers.list,nope", "batch=1", AUTH, b"", 207),
    ("GET", "/api/v1/tiers.list,companies.create", "batch=1", AUTH, b"", 400),
    ("PUT", "/api/v1/tiers.list", "", JSON, b"{}", 405),
    ("HEAD", "/api/v1/tiers.list", "", AUTH, b"", 204),
]


def test_the_handler_answers_every_request_with_a_new_request_id(keyed_engine: LocalEngine) -> None:
    handler = TRPCHandler(keyed_engine)
    seen: set[str] = set()
    for method, path, query, headers, body, status in REQUESTS:
        headers = {**headers, "x-request-id": CLIENT_ID}
        answer = handler.handle(method, path, query, headers, body)
        assert answer.status == status, (method, path, answer.body)
        seen.add(assert_id(answer.headers.get("x-request-id")))
        assert answer.request_id == answer.headers["x-request-id"]
    assert len(seen) == len(REQUESTS)  # one per request


def test_the_handler_uses_the_request_id_it_is_given(keyed_engine: LocalEngine) -> None:
    rid = new_request_id()
    answer = TRPCHandler(keyed_engine).handle(
        "GET", "/api/v1/tiers.list", "", AUTH, b"", request_id=rid
    )
    assert answer.headers == {"content-type": "application/json", "x-request-id": rid}


def test_request_ids_are_well_formed_and_distinct() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(REQUEST_ID.fullmatch(rid) for rid in ids)


def test_the_debug_log_names_the_request_id(
    keyed_engine: LocalEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="chatarmin_os.local"):
        answer = TRPCHandler(keyed_engine).handle("GET", "/api/v1/tiers.list", "", AUTH, b"")
    assert [r.getMessage() for r in caplog.records] == [
        f"GET /api/v1/tiers.list -> 200 [{answer.request_id}]"
    ]
    assert KEY not in caplog.text


def test_the_in_process_transports_pass_the_request_id_on(keyed_engine: LocalEngine) -> None:
    with httpx.Client(transport=LocalTransport(keyed_engine), base_url="http://os.local") as http:
        first = http.get("/api/v1/tiers.list", headers=AUTH)
        second = http.get("/api/v1/nope", headers=AUTH)
        batch = http.get("/api/v1/tiers.list,tiers.list?batch=1", headers=AUTH)
    assert first.status_code == 200 and second.status_code == 404
    ids = {assert_id(r.headers.get("x-request-id")) for r in (first, second, batch)}
    assert len(ids) == 3
    assert len(batch.json()) == 2  # two calls, one answer, one id


async def test_the_async_transport_passes_the_request_id_on(keyed_engine: LocalEngine) -> None:
    transport = AsyncLocalTransport(keyed_engine, ServerOptions(prefix="/trpc"))
    async with httpx.AsyncClient(transport=transport, base_url="http://os.local") as http:
        response = await http.get("/trpc/tiers.list", headers=AUTH)
    assert response.status_code == 200
    assert_id(response.headers.get("x-request-id"))


def test_the_fault_injectors_answers_carry_a_request_id() -> None:
    local = LocalChatarminOS()
    try:
        local.faults.fail_next("tiers.list", status=503)
        http = local._http_client()
        response = http.get(f"{local.base_url}/tiers.list")
        assert response.status_code == 503
        assert_id(response.headers.get("x-request-id"))
        http.close()
    finally:
        local.close()


# -- the ASGI app ------------------------------------------------------------------------------


async def asgi_call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "headers": headers,
    }
    await app(scope, receive, send)
    start, content = sent
    return start["status"], dict(start["headers"]), content["body"]


async def test_the_asgi_app_answers_every_request_with_a_request_id(
    keyed_engine: LocalEngine,
) -> None:
    app = create_app(keyed_engine, ServerOptions(max_body=100))
    auth = [
        (b"authorization", AUTH["authorization"].encode()),
        (b"x-request-id", CLIENT_ID.encode()),
    ]
    json_type = [(b"content-type", b"application/json")]
    cases = [
        ("GET", "/api/v1/tiers.list", auth, b"", 200),
        ("GET", "/api/v1/tiers.list,tiers.list?batch=1", auth, b"", 200),
        ("GET", "/nowhere", auth, b"", 404),
        ("GET", "/healthz", [], b"", 200),
        ("POST", "/healthz", [], b"", 405),
        ("POST", "/api/v1/companies.create", auth + json_type, b"x" * 101, 413),
        (
            "POST",
            "/api/v1/companies.create",
            [*auth, *json_type, (b"content-length", b"500")],
            b"",
            413,
        ),
    ]
    ids = set()
    for method, path, headers, body, status in cases:
        got, answer_headers, _ = await asgi_call(app, method, path, headers, body)
        assert got == status, (method, path)
        ids.add(assert_id(answer_headers[b"x-request-id"].decode()))
    assert len(ids) == len(cases)


# -- over HTTP: chatarmin-os serve and the testing server ------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("request-ids")
    process = ServeProcess.start(
        ["--api-key", KEY, "--access-log", "--max-body", "1000", "--read-timeout", "5"], workdir
    )
    try:
        yield process
    finally:
        process.kill()


def raw_answer(origin: str, data: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = origin.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, raw
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def test_serve_answers_every_request_with_a_request_id(served: ServeProcess) -> None:
    ids: list[str] = []
    with httpx.Client(headers={"x-request-id": CLIENT_ID}) as http:
        for method, path, query, headers, body, status in REQUESTS:
            target = f"{path}?{query}" if query else path
            response = http.request(
                method, served.origin + target, headers=headers, content=body or None
            )
            assert response.status_code == status, (method, target, response.text)
            ids.append(assert_id(response.headers.get("x-request-id")))
        health = http.get(served.origin + "/healthz")
        ids.append(assert_id(health.headers.get("x-request-id")))
    # Refused before any procedure runs: too large by its Content-Length, not HTTP at all.
    for data in (
        b"POST /api/v1/companies.create HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
    ):
        status, headers, body = raw_answer(served.origin, data)
        assert status in (400, 413), body
        assert json.loads(body)["error"]["data"]["httpStatus"] == status
        ids.append(assert_id(headers.get("x-request-id")))
    assert len(set(ids)) == len(ids)


def test_the_access_log_names_each_request_id(served: ServeProcess) -> None:
    with httpx.Client(headers=AUTH) as http:
        response = http.get(served.base_url + "/tiers.list")
    rid = assert_id(response.headers.get("x-request-id"))
    served.terminate(timeout=5)
    lines = [line for line in served.output() if rid in line]
    assert len(lines) == 1 and '"GET /api/v1/tiers.list HTTP/1.1" 200' in lines[0], lines


def test_the_testing_server_answers_with_request_ids(tmp_path: Path) -> None:
    with (
        ChatarminOSServer(options=ServerOptions(max_batch=2)) as server,
        httpx.Client(
            headers={"authorization": f"Bearer {server.api_key}", "x-request-id": CLIENT_ID}
        ) as http,
    ):
        ok = http.get(server.base_url + "/tiers.list")
        too_many = http.get(server.base_url + "/tiers.list,tiers.list,tiers.list?batch=1")
        server.faults.fail_next("tiers.list", status=429)
        faulted = http.get(server.base_url + "/tiers.list")
        # http.server's own refusal: a header line too long.
        too_long = b"GET /api/v1/tiers.list HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
        status, headers, _ = raw_answer(server.url, too_long)
    assert (ok.status_code, too_many.status_code, faulted.status_code) == (200, 400, 429)
    assert status == 431
    ids = {assert_id(r.headers.get("x-request-id")) for r in (ok, too_many, faulted)}
    ids.add(assert_id(headers.get("x-request-id")))
    assert len(ids) == 4


def test_a_forked_child_makes_ids_of_its_own() -> None:
    import os

    read, write = os.pipe()
    parent_id = new_request_id()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert REQUEST_ID.fullmatch(child_id)
    assert child_id[:16] != parent_id[:16]  # its own random part
    assert child_id != new_request_id()
