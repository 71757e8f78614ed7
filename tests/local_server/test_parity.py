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
from tests.conformance.reference_server import ReferenceServer
from tests.conftest import start_reference_server

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
    with socket.create_connection(("127.0.0.1", server.port or 0), timeout=10) as sock:
        sock.sendall(data.encode())
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
