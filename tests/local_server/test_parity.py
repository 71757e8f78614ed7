"""The local server answers protocol edge cases exactly as the real ``@trpc/server`` does.

The same raw requests go to the Node reference router (``tests/conformance/server.mjs``,
started with ``--max-batch 3`` or ``--no-batching``) and to the local server's tRPC handler
with the same options; status, tRPC code, JSON-RPC number, message and ``data.path`` must
agree. Only requests the two routers answer from the protocol alone are compared (the
reference router's outputs are canned).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from chatarmin_os.local import LocalEngine
from chatarmin_os.local.protocol import TRPCHandler
from tests.support.needs import start_reference_server
from tests.support.reference_server import ReferenceServer

KEY = "os_sk_parity"
AUTH = f"Authorization: Bearer {KEY}\r\n"
JSON = "Content-Type: application/json\r\n"

# (method, target, extra headers, body)
CASES: list[tuple[str, str, str, str]] = [
    ("GET", "/api/v1/tiers.list,tiers.list,tiers.list,tiers.list?batch=1", "", ""),
    ("POST", "/api/v1/links.reset,links.reset,links.reset,links.reset?batch=1", JSON, "{}"),
    ("GET", "/api/v1/tiers.list,billing.trackUsage?batch=1", "", ""),
    ("GET", "/api/v1/nope.nothing", "", ""),
    ("GET", "/api/v1/features/check", "", ""),
    ("GET", "/api/v1/tiers.apply", "", ""),
    ("GET", "/api/v1", "", ""),
    ("GET", "/api/v1/%E0%A4%A", "", ""),
    ("GET", "/api/v1/%ED%A0%80", "", ""),
    ("GET", "/api/v1//tiers.list", "", ""),
    ("PUT", "/api/v1/tiers.list", "", ""),
    ("DELETE", "/api/v1/links.reset", "", ""),
    ("PATCH", "/api/v1/links.reset", JSON, "{}"),
    ("POST", "/api/v1/links.reset", "Content-Type: text/plain\r\n", "{}"),
    ("POST", "/api/v1/links.reset", "", "{}"),
    ("POST", "/api/v1/features.check", JSON, "{}"),
    ("GET", "/api/v1/billing.trackUsage", "", ""),
    ("GET", "/api/v1/tiers.get,tiers.get?batch=1&input=%5B%5D", "", ""),
    ("GET", "/api/v1/tiers.get,tiers.list?batch=1&input=%5B%5D", "", ""),
    ("GET", "/api/v1/tiers.list?batch=1&input=%5B%5D", "", ""),
]


def node_answer(server: ReferenceServer, method: str, target: str, headers: str, body: str) -> Any:
    data = f"{method} {target} HTTP/1.1\r\nHost: x\r\n{AUTH}{headers}"
    data += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    return exchange(server, data.encode())


def exchange(server: ReferenceServer, data: bytes) -> tuple[int, Any]:
    """Send a raw request to the Node server; (status, JSON body or ``None``)."""
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
        sock.sendall(data)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while payload:
            size_line, _, payload = payload.partition(b"\r\n")
            size = int(size_line, 16)
            decoded, payload = decoded + payload[:size], payload[size + 2 :]
        payload = decoded
    return status, json.loads(payload) if payload else None


def local_answer(handler: TRPCHandler, method: str, target: str, headers: str, body: str) -> Any:
    path, _, query = target.partition("?")
    header_map = {"authorization": f"Bearer {KEY}"}
    if headers:
        name, _, value = headers.strip().partition(": ")
        header_map[name.lower()] = value
    answer = handler.handle(method, path, query, header_map, body.encode())
    return answer.status, json.loads(answer.body) if answer.body else None


def comparable(payload: Any) -> Any:
    """What must agree: per error its message, numbers and path (not the stack); results."""
    if isinstance(payload, list):
        return [comparable(item) for item in payload]
    if isinstance(payload, dict) and "error" in payload:
        error = payload["error"]
        data = error["data"]
        return (error["message"], error["code"], data["code"], data["httpStatus"], data.get("path"))
    return "result" if isinstance(payload, dict) and "result" in payload else payload


@pytest.fixture(scope="module", params=[["--max-batch", "3"], ["--no-batching"]], ids=str)
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[ReferenceServer, TRPCHandler]]:
    options: list[str] = request.param
    node = start_reference_server("json", tuple(options))
    engine = LocalEngine(api_keys=[KEY])
    handler = TRPCHandler(
        engine,
        max_batch=int(options[1]) if options[0] == "--max-batch" else 100,
        batching=options != ["--no-batching"],
    )
    try:
        yield node, handler
    finally:
        node.stop()
        engine.close()


@pytest.mark.parametrize(("method", "target", "headers", "body"), CASES)
def test_the_same_answer_as_trpc(
    pair: tuple[ReferenceServer, TRPCHandler], method: str, target: str, headers: str, body: str
) -> None:
    node, handler = pair
    node_status, node_payload = node_answer(node, method, target, headers, body)
    status, payload = local_answer(handler, method, target, headers, body)
    assert (status, comparable(payload)) == (node_status, comparable(node_payload))


# -- body encodings ---------------------------------------------------------------------------
# Node reads a body as UTF-8 (invalid bytes become U+FFFD, a leading UTF-8 BOM is skipped) and
# never guesses another encoding, so UTF-16 and UTF-32 are not JSON: 400. The messages are
# V8's JSON.parse errors and are not compared; status, codes and paths are.

DOC = '{"name":"Acme"}'
BODIES: dict[str, bytes] = {
    "utf8": DOC.encode(),
    "utf8-bom": b"\xef\xbb\xbf" + DOC.encode(),
    "utf16le-bom": b"\xff\xfe" + DOC.encode("utf-16-le"),
    "utf16be-bom": b"\xfe\xff" + DOC.encode("utf-16-be"),
    "utf16le": DOC.encode("utf-16-le"),
    "utf16be": DOC.encode("utf-16-be"),
    "utf32le-bom": b"\xff\xfe\x00\x00" + DOC.encode("utf-32-le"),
    "utf32be-bom": b"\x00\x00\xfe\xff" + DOC.encode("utf-32-be"),
    "utf32le": DOC.encode("utf-32-le"),
    "invalid-utf8": b'{"name":"Ac\xffme"}',
    "utf8-surrogate": b'{"name":"\xed\xa0\x80"}',
    "overlong-utf8": b'{"name":"\xc0\xafx"}',
    "truncated-utf8": b'{"name":"\xf0\x9f\x98"}',
    "bom-only": b"\xef\xbb\xbf",
    "space-then-bom": b" \xef\xbb\xbf" + DOC.encode(),
    "utf16-bom-only": b"\xff\xfe",
    "nul-in-string": b'{"name":"A\x00"}',
}


def batch_of(body: bytes) -> bytes:
    """The same bytes as the input of call 0 of a batch (``{"0":...}`` in the same encoding)."""
    for encoding, bom in (("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
        if len(body) > 2 and body.startswith(bom) and body[2:].decode(encoding, "ignore") == DOC:
            return bom + ('{"0":' + DOC + "}").encode(encoding)
    if body.startswith(b"{"):
        return b'{"0":' + body + b"}"
    return body


def node_raw(server: ReferenceServer, target: str, body: bytes) -> tuple[int, Any]:
    head = f"POST {target} HTTP/1.1\r\nHost: x\r\n{AUTH}{JSON}"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return exchange(server, head.encode() + body)


def shape(payload: Any) -> Any:
    """Status-level shape: per call, the error's numbers, code and path, or "result"."""
    if isinstance(payload, list):
        return [shape(item) for item in payload]
    if "error" in payload:
        error = payload["error"]
        data = error["data"]
        return (error["code"], data["code"], data["httpStatus"], data.get("path"))
    return "result"


@pytest.fixture(scope="module")
def node_and_local() -> Iterator[tuple[ReferenceServer, TRPCHandler]]:
    node = start_reference_server("json")
    engine = LocalEngine(api_keys=[KEY])
    try:
        yield node, TRPCHandler(engine)
    finally:
        node.stop()
        engine.close()


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_in_any_encoding_is_answered_as_trpc_does(
    node_and_local: tuple[ReferenceServer, TRPCHandler], name: str, batch: bool
) -> None:
    node, handler = node_and_local
    body = batch_of(BODIES[name]) if batch else BODIES[name]
    query = "batch=1" if batch else ""
    target = "/api/v1/companies.create" + (f"?{query}" if query else "")
    node_status, node_payload = node_raw(node, target, body)
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    answer = handler.handle("POST", "/api/v1/companies.create", query, headers, body)
    payload = json.loads(answer.body)
    assert (answer.status, shape(payload)) == (node_status, shape(node_payload)), payload
    assert answer.headers["content-type"] == "application/json"


def test_a_utf16_body_creates_nothing() -> None:
    engine = LocalEngine(api_keys=[KEY])
    handler = TRPCHandler(engine)
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    try:
        for name in ("utf16le-bom", "utf16be-bom", "utf16le", "utf16be", "utf32le-bom"):
            answer = handler.handle("POST", "/api/v1/companies.create", "", headers, BODIES[name])
            assert answer.status == 400, name
            error = json.loads(answer.body)["error"]
            assert error["data"] == {
                "code": "BAD_REQUEST",
                "httpStatus": 400,
                "path": "companies.create",
            }
            assert error["message"].startswith("Unable to parse the request input as JSON")
        created = handler.handle("POST", "/api/v1/companies.create", "", headers, DOC.encode())
        assert json.loads(created.body)["result"]["data"]["shortId"] == "acme"  # the first Acme
    finally:
        engine.close()


def test_two_leading_byte_order_marks_are_skipped_as_node_20_does(
    node_and_local: tuple[ReferenceServer, TRPCHandler],
) -> None:
    """Node 20's fetch ``Request.text()`` drops a BOM, then its TextDecoder another: the
    local server accepts what that accepts (not compared with Node: later Node versions
    may skip only one, and accepting more is never stricter)."""
    _, handler = node_and_local
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    bom = b"\xef\xbb\xbf"
    two = handler.handle("POST", "/api/v1/companies.create", "", headers, bom * 2 + DOC.encode())
    three = handler.handle("POST", "/api/v1/companies.create", "", headers, bom * 3 + DOC.encode())
    assert (two.status, three.status) == (200, 400)
