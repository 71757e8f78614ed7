"""A request built from a ``WireRequest`` is exactly what ``library.Request(...)`` builds,
for httpx and httpx2, the first time (built both ways and compared) and every time after
(from the prepared headers)."""

from __future__ import annotations

import json
from types import ModuleType

import httpx
import pytest

from chatarmin_os._client.request import WireRequest, _builder
from chatarmin_os._urls import URLJoiner

httpx2 = pytest.importorskip("httpx2", reason="httpx2 is not installed (Python 3.11+)")

BASE = httpx.URL("https://os.example.test:8443/api/v1/")
EXTENSIONS = {"timeout": {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 30.0}}


def headers(extra: dict[str, str] | None = None) -> httpx.Headers:
    built = httpx.Headers({"Accept-Encoding": "gzip, deflate", "Connection": "keep-alive"})
    built.update({"Authorization": "Bearer os_sk_x", "User-Agent": "chatarmin-os-python/1"})
    built.update(extra or {})
    return built


def expected(lib: ModuleType, wire: WireRequest) -> object:
    return lib.Request(
        wire.method,
        str(BASE) + wire.target,
        headers=wire.headers.raw,
        content=wire.content,
        extensions=wire.extensions,
    )


def same(built: object, reference: object) -> None:
    assert type(built) is type(reference)
    assert built.method == reference.method  # type: ignore[attr-defined]
    assert str(built.url) == str(reference.url)  # type: ignore[attr-defined]
    assert built.headers.raw == reference.headers.raw  # type: ignore[attr-defined]
    assert built.content == reference.content  # type: ignore[attr-defined]
    assert built.extensions == reference.extensions  # type: ignore[attr-defined]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_queries_and_mutations_are_built_as_the_library_builds_them(lib: ModuleType) -> None:
    joiner = URLJoiner(BASE)
    get_headers = headers()
    post_headers = headers({"Content-Type": "application/json"})
    for n in range(3):  # the first built both ways, the others from the template
        query = f"features.check?input={n}%7B%22companyId%22%3A%22c%201%22%7D"
        wire = WireRequest("GET", query, joiner, get_headers, None, EXTENSIONS)
        same(wire.build(lib), expected(lib, wire))
        body = json.dumps({"n": "x" * n}).encode()
        wire = WireRequest("POST", "billing.trackUsage", joiner, post_headers, body, EXTENSIONS)
        same(wire.build(lib), expected(lib, wire))
    key = (id(get_headers), lib.URL(str(BASE)).netloc, "GET")
    assert _builder(lib)._templates[key][1] is not None  # the fast road is taken


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_headers_the_template_cannot_reproduce_are_built_the_slow_way(lib: ModuleType) -> None:
    odd = headers({"Content-Length": "3"})  # a caller's default the library keeps as is
    joiner = URLJoiner(BASE)
    for body in (b"abc", b"abcdef"):
        wire = WireRequest("POST", "billing.trackUsage", joiner, odd, body, EXTENSIONS)
        same(wire.build(lib), expected(lib, wire))


def test_a_request_is_rebuilt_for_another_library_and_kept() -> None:
    wire = WireRequest("GET", "tiers.list", URLJoiner(BASE), headers(), None, EXTENSIONS)
    first = wire.build(httpx2)
    assert wire.build(httpx2) is first
    assert isinstance(wire.to_httpx(), httpx.Request)
    assert wire.sent is wire.to_httpx()
