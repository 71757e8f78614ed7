"""``chatarmin-os serve`` under hostile input: every answer a tRPC error, never a crash.

One real server process takes a few hundred malformed, oversized, mis-encoded, injection-
shaped and slow requests (raw sockets where httpx would refuse to send them). Every answer
must be a tRPC error envelope with the right code and an HTTP status matching it, nothing
may be a 500, the server must stay up and within bounded memory, and the data written
before the barrage must be intact afterwards.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chatarmin_os._procedures import PROCEDURES
from chatarmin_os.local import LocalEngine
from tests.support.serve_process import ServeProcess

KEY = "os_sk_hostile"
READ_TIMEOUT = 1.0
TRPC_NUMBERS = {
    "BAD_REQUEST": -32600,
    "UNAUTHORIZED": -32001,
    "NOT_FOUND": -32004,
    "METHOD_NOT_SUPPORTED": -32005,
    "TIMEOUT": -32008,
    "CONFLICT": -32009,
    "PAYLOAD_TOO_LARGE": -32013,
    "UNSUPPORTED_MEDIA_TYPE": -32015,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    workdir = tmp_path_factory.mktemp("hostile")
    process = ServeProcess.start(
        ["--api-key", KEY, "--read-timeout", str(READ_TIMEOUT), "--db", str(workdir / "os.db")],
        workdir,
    )
    try:
        yield process
    finally:
        process.kill()


@pytest.fixture(scope="module")
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url + "/", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    ) as client:
        yield client


def port_of(server: ServeProcess) -> int:
    return int(server.origin.rsplit(":", 1)[1])


def raw(server: ServeProcess, data: bytes, *, read_timeout: float = 5.0) -> tuple[int, bytes]:
    """Send bytes on a fresh connection; (status, body) of the answer (closes after)."""
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=read_timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {buffer!r}"
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(head.split(b" ")[1]), body[:length]


def assert_trpc_error(status: int, body: bytes | Any, code: str, path: str | None = ...) -> str:  # type: ignore[assignment]
    """The answer is a tRPC error envelope of ``code``; returns its message."""
    payload = json.loads(body) if isinstance(body, bytes) else body
    if isinstance(payload, list):  # a batch: each call's own error, all of this code
        return "; ".join(assert_trpc_error(status, item, code, path) for item in payload)
    error = payload["error"]
    assert error["data"]["code"] == code, payload
    assert error["code"] == TRPC_NUMBERS[code], payload
    assert error["data"]["httpStatus"] == status, payload
    if path is not ...:
        assert error["data"].get("path") == path, payload
    assert isinstance(error["message"], str) and len(error["message"]) < 2000
    return str(error["message"])


def request(http: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = http.request(method, path, **kwargs)
    assert response.status_code != 500, response.text
    return response


def rss_kib(server: ServeProcess) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # pragma: no cover - not Linux


# -- the barrage -----------------------------------------------------------------------------

HOSTILE_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed", b'{"name": ', "BAD_REQUEST"),
    ("not-json", b"hello", "BAD_REQUEST"),
    ("nan", b'{"quantity": NaN}', "BAD_REQUEST"),
    ("infinity", b"Infinity", "BAD_REQUEST"),
    ("huge-int", b'{"n": ' + b"9" * 5000 + b"}", "BAD_REQUEST"),
    # Invalid UTF-8 is read as U+FFFD, as Node's Request.text() does: data, not an error.
    ("invalid-utf8", b'{"name": "\xff\xfe"}', "?"),
    ("bom", b'\xef\xbb\xbf{"name": "a"}', "?"),  # a UTF-8 BOM is skipped, as TextDecoder does
    # Other encodings are not guessed: Node reads them as (broken) UTF-8, which is no JSON.
    ("utf16le-bom", b"\xff\xfe" + '{"name": "a"}'.encode("utf-16-le"), "BAD_REQUEST"),
    ("utf16be-bom", b"\xfe\xff" + '{"name": "a"}'.encode("utf-16-be"), "BAD_REQUEST"),
    ("utf16le", '{"name": "a"}'.encode("utf-16-le"), "BAD_REQUEST"),
    ("utf16be", '{"name": "a"}'.encode("utf-16-be"), "BAD_REQUEST"),
    ("utf32le-bom", b"\xff\xfe\x00\x00" + '{"name": "a"}'.encode("utf-32-le"), "BAD_REQUEST"),
    ("utf32be", '{"name": "a"}'.encode("utf-32-be"), "BAD_REQUEST"),
    ("space-then-bom", b' \xef\xbb\xbf{"name": "a"}', "BAD_REQUEST"),
    ("deep-array", b"[" * 1000 + b"]" * 1000, "BAD_REQUEST"),
    ("deep-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "BAD_REQUEST"),
    ("null", b"null", "BAD_REQUEST"),
    ("array", b"[1, 2]", "BAD_REQUEST"),
    ("string", b'"companies"', "BAD_REQUEST"),
    ("lone-surrogate", b'{"companyId": "\\ud800", "name": "\\udfff"}', "BAD_REQUEST"),
    ("unknown-field", b'{"__proto__": {"admin": true}}', "BAD_REQUEST"),
    ("sql", b'{"companyId": "x\' OR 1=1 --", "name": "\'); DROP TABLE companies; --"}', "?"),
]

MUTATIONS = [path for path, kind in PROCEDURES.items() if kind == "mutation"]
QUERIES = [path for path, kind in PROCEDURES.items() if kind == "query" and path != "tiers.list"]


def test_hostile_input_gets_trpc_errors_and_leaves_data_intact(
    server: ServeProcess, http: httpx.Client
) -> None:
    # Data written before the barrage.
    company = request(http, "POST", "companies.create", json={"name": "Keep Me Inc"}).json()
    company_id = company["result"]["data"]["id"]
    request(
        http,
        "POST",
        "features.setAccess",
        json={"companyId": company_id, "featureCode": "ai_credit", "isEnabled": True},
    )
    tracked = request(
        http,
        "POST",
        "billing.trackUsage",
        json={"companyId": company_id, "featureCode": "ai_credit", "quantity": 7},
    ).json()["result"]["data"]
    before = rss_kib(server)
    answered = 0

    # Bodies: every mutation, every hostile body.
    for path in MUTATIONS:
        for name, body, code in HOSTILE_BODIES:
            response = request(
                http, "POST", path, content=body, headers={"Content-Type": "application/json"}
            )
            answered += 1
            if code == "?":  # injection-shaped strings are data: a normal refusal, or stored
                assert response.status_code in (200, 400, 404), (name, path, response.text)
                continue
            if name == "null" and path == "links.reset":  # its input is optional
                assert response.status_code == 200, response.text
                continue
            assert_trpc_error(response.status_code, response.content, code, path), (name, path)

    # The same through ?input= on every query (the deep ones fit in the head limit).
    for path in QUERIES:
        for name, body, code in HOSTILE_BODIES:
            if len(body) > 20_000:
                continue
            query = "input=" + quote(
                body.decode("utf-8", "surrogateescape"), safe="", errors="surrogateescape"
            )
            response = request(http, "GET", f"{path}?{query}")
            answered += 1
            if code == "?":
                assert response.status_code in (200, 400, 404), (name, path, response.text)
                continue
            assert_trpc_error(response.status_code, response.content, code, path)

    # Authentication.
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Basic b3Nfc2s6"},
        {"Authorization": "Bearer os_sk_wrong"},
        {"Authorization": "Bearer " + "k" * 10_000},
        {"Authorization": "Bearer os_sk_h\u00f6stile".encode()},
    ):
        response = request(http, "GET", "tiers.list", headers=headers)
        assert_trpc_error(response.status_code, response.content, "UNAUTHORIZED", "tiers.list")
        answered += 1
    status, body = raw(server, b"GET /api/v1/tiers.list HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_trpc_error(status, body, "UNAUTHORIZED", "tiers.list")

    # Paths and encodings.
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    for target, code in [
        (b"/api/v1%2ftiers.list", "NOT_FOUND"),
        (b"/api/v1%2Ftiers.list", "NOT_FOUND"),
        (b"/api/v1/%ED%A0%80", "BAD_REQUEST"),
        (b"/api/v1/%zz", "BAD_REQUEST"),
        (b"/api/v1/%E0%A4%A", "BAD_REQUEST"),
        (b"/api/v1/../api/v1/tiers.list", "NOT_FOUND"),
        (b"/api/v1//tiers.list", "NOT_FOUND"),
        (b"/api/v1/tiers.list%00", "NOT_FOUND"),
        (b"/api/v1/features/check", "NOT_FOUND"),
        (b"/api/v1/tiers.apply", "NOT_FOUND"),
        (b"/api/v1", "NOT_FOUND"),
        (b"/api/v1/" + b"x" * 60_000, "NOT_FOUND"),
        (b"/API/V1/tiers.list", "NOT_FOUND"),
        (b"/", "NOT_FOUND"),
        (b"*", "NOT_FOUND"),
        (b"/api/v1/tiers.get?input=%zz", "BAD_REQUEST"),
        (b"/api/v1/tiers.get?input=%7B%22tierCode%22%3A%22%ff%22%7D", "NOT_FOUND"),
        (b"/api/v1/tiers.get,tiers.get?batch=1&input=%5B%5D", "BAD_REQUEST"),
    ]:
        status, body = raw(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
        message = assert_trpc_error(status, body, code)
        assert len(message) < 400, target  # long paths are cut in messages
        answered += 1
    status, body = raw(server, b"GET /api/v1/tiers.list/ HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
    assert status == 200 and json.loads(body)["result"]["data"]

    # Methods and content types.
    for method, content_type, code in [
        (b"PUT", b"", "UNSUPPORTED_MEDIA_TYPE"),
        (b"DELETE", b"", "UNSUPPORTED_MEDIA_TYPE"),
        (b"OPTIONS", b"", "UNSUPPORTED_MEDIA_TYPE"),
        (b"PATCH", b"Content-Type: application/json\r\n", "METHOD_NOT_SUPPORTED"),
        (b"POST", b"Content-Type: text/plain\r\n", "UNSUPPORTED_MEDIA_TYPE"),
        (b"POST", b"Content-Type: multipart/form-data; boundary=x\r\n", "UNSUPPORTED_MEDIA_TYPE"),
        (b"POST", b"Content-Type: application/json\r\n", "METHOD_NOT_SUPPORTED"),
    ]:
        status, body = raw(
            server,
            method
            + b" /api/v1/features.check HTTP/1.1\r\nHost: x\r\n"
            + auth
            + content_type
            + b"Content-Length: 2\r\n\r\n{}",
        )
        assert_trpc_error(status, body, code)
        answered += 1
    status, body = raw(server, b"HEAD /api/v1/tiers.list HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, body) == (204, b"")

    # Batches: over the limit (nothing runs), mixed kinds, at the limit.
    creates = ",".join(["companies.create"] * 101)
    inputs = {str(i): {"name": f"Batch {i}"} for i in range(101)}
    response = request(http, "POST", f"{creates}?batch=1", json=inputs)
    assert_trpc_error(response.status_code, response.content, "BAD_REQUEST", None)
    assert response.json()["error"]["message"] == "Batch call exceeds maximum size"
    many = ",".join(["tiers.list"] * 10_000).encode()
    status, body = raw(server, b"GET /api/v1/" + many + b"?batch=1 HTTP/1.1\r\n" + auth + b"\r\n")
    assert_trpc_error(status, body, "PAYLOAD_TOO_LARGE", None)  # over the head limit
    response = request(http, "POST", "tiers.list,links.reset?batch=1", json={})
    assert_trpc_error(response.status_code, response.content, "BAD_REQUEST", None)
    onboards = ",".join(["onboard"] * 100)
    response = request(
        http,
        "POST",
        f"{onboards}?batch=1",
        json={
            str(i): {
                "externalOrgId": f"org_{i}",
                "label": "L",
                "hints": {"companyName": f"Org {i}"},
            }
            for i in range(100)
        },
    )
    assert response.status_code == 200
    assert [set(item) for item in response.json()] == [{"result"}] * 100  # all 100 onboarded
    answered += 4

    # Oversized: head, declared body, streamed body.
    status, body = raw(
        server, b"GET /api/v1/tiers.list HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    )
    assert_trpc_error(status, body, "PAYLOAD_TOO_LARGE")
    status, body = raw(
        server,
        b"POST /api/v1/companies.create HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{",
    )
    assert_trpc_error(status, body, "PAYLOAD_TOO_LARGE")
    chunk = b"a" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))
    status, body = raw(
        server,
        b"POST /api/v1/companies.create HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked,
    )
    assert_trpc_error(status, body, "PAYLOAD_TOO_LARGE")
    answered += 3

    # Not HTTP at all.
    for garbage in (b"\x00\x01\x02\x03\r\n\r\n", b"GET\r\n\r\n", b"G\xffT / HTTP/1.1\r\n\r\n"):
        status, body = raw(server, garbage)
        assert_trpc_error(status, body, "BAD_REQUEST")
        answered += 1

    # Slow clients: a half-sent request times out (408), an idle connection is closed,
    # and other clients are answered meanwhile.
    slow = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    idle = socket.create_connection(("127.0.0.1", port_of(server)), timeout=5)
    try:
        slow.sendall(b"POST /api/v1/companies.create HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        assert request(http, "GET", "tiers.list").status_code == 200
        status, body = read_answer(slow)
        assert_trpc_error(status, body, "TIMEOUT")
        assert idle.recv(1) == b""  # closed by the server, no answer owed
    finally:
        slow.close()
        idle.close()

    # Up, bounded, and the earlier data intact.
    assert httpx.get(f"{server.origin}/healthz").json() == {"ok": True}
    assert rss_kib(server) - before < 150_000, "memory grew by more than 150 MB"
    check = request(
        http,
        "GET",
        "features.check?input="
        + quote(json.dumps({"companyId": company_id, "featureCode": "ai_credit"})),
    ).json()["result"]["data"]
    assert check["currentUsage"] == tracked["currentUsage"] == 7
    same = request(
        http, "GET", "companies.getByProductLink?input=" + quote('{"externalOrgId":"org_1"}')
    ).json()["result"]["data"]
    assert same["name"] == "Org 1"
    assert answered > 300


def test_each_onboard_of_a_full_batch_runs_a_bounded_number_of_statements() -> None:
    """The work per item of a batch of 100 onboards does not grow along the batch: counted
    in SQL statements (one per company already there would make a batch crawl)."""
    engine = LocalEngine(api_keys=[KEY])
    conn = engine._conn
    assert conn is not None
    counts = []
    try:
        for i in range(100):
            statements: list[str] = []
            conn.set_trace_callback(statements.append)
            try:
                engine.call(
                    "onboard",
                    {
                        "externalOrgId": f"org_{i}",
                        "label": "L",
                        "hints": {"companyName": f"Org {i}"},
                    },
                    api_key=KEY,
                )
            finally:
                conn.set_trace_callback(None)
            counts.append(len(statements))
    finally:
        engine.close()
    assert max(counts) <= 2 * counts[0], counts


def test_a_client_still_sending_a_refused_body_reads_the_answer(server: ServeProcess) -> None:
    """The body is refused as soon as its Content-Length says it is too large; the client,
    still sending 8 MB of it, gets the 413 and then the end of the connection (the server
    drops what still comes), not a reset that would lose the answer."""
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    body = b"x" * (8 * 1024 * 1024)
    head = (
        b"POST /api/v1/companies.create HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(head + body)
        status, answer = read_answer(sock)
        assert sock.recv(1) == b""  # then the server's end, cleanly
    assert_trpc_error(status, answer, "PAYLOAD_TOO_LARGE")
