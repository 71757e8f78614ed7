"""OpenTelemetry: one CLIENT span per call through the global tracer provider, or nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatarmin_os import AsyncChatarminOS, ChatarminOS, NotFoundError
from tests.support.canned import METERED_ACCESS, METERED_ACCESS_ANSWER
from tests.support.helpers import API_KEY, BASE_URL, ok, trpc_error

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    # The global provider can be set once per process: swap it for this test only.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def client_answering(*answers: httpx.Response, **options: object) -> ChatarminOS:
    queue = list(answers)
    http = httpx.Client(transport=httpx.MockTransport(lambda request: queue.pop(0)))
    return ChatarminOS(api_key=API_KEY, base_url=BASE_URL, http_client=http, **options)  # type: ignore[arg-type]


def test_a_call_is_one_client_span(spans: InMemorySpanExporter) -> None:
    client = client_answering(
        trpc_error("SERVICE_UNAVAILABLE", 503), ok(METERED_ACCESS), sleep=lambda seconds: None
    )
    client.features.check(company_id="c1", feature_code="ai_credit")
    [span] = spans.get_finished_spans()
    assert span.name == "chatarmin_os features.check"
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes or {}) == {
        "rpc.system": "trpc",
        "rpc.method": "features.check",
        "chatarmin_os.kind": "query",
        "server.address": "os.example.test",
        "http.response.status_code": 200,
        "chatarmin_os.retries": 1,
        "chatarmin_os.batch_size": 1,
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_failed_call_records_its_error_and_never_the_key(spans: InMemorySpanExporter) -> None:
    client = client_answering(trpc_error("NOT_FOUND", 404, message="no such feature"))
    with pytest.raises(NotFoundError):
        client.features.check(company_id="c1", feature_code="nope")
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "NotFoundError"
    assert span.attributes["http.response.status_code"] == 404
    [event] = span.events
    assert event.name == "exception"
    assert API_KEY not in repr(span.to_json())


def test_batched_calls_say_how_many_shared_a_request(spans: InMemorySpanExporter) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        size = len(request.url.path.split(","))
        return httpx.Response(200, json=[METERED_ACCESS_ANSWER] * size)

    async def main() -> None:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        client = AsyncChatarminOS(
            api_key=API_KEY, base_url=BASE_URL, http_client=http, batching=True
        )
        await asyncio.gather(
            *(client.features.check(company_id="c1", feature_code=f"f{i}") for i in range(3))
        )

    asyncio.run(main())
    finished = spans.get_finished_spans()
    assert len(finished) == 3
    assert {(span.attributes or {})["chatarmin_os.batch_size"] for span in finished} == {3}


def test_no_provider_no_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    EXPORTER.clear()
    client = client_answering(ok(METERED_ACCESS))
    client.features.check(company_id="c1", feature_code="ai_credit")
    assert EXPORTER.get_finished_spans() == ()


def test_without_opentelemetry_installed_nothing_is_imported() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if the extra were not installed
import httpx
from chatarmin_os import ChatarminOS
body = b'{"result":{"data":{"code":"pro","name":"Pro","description":null,"baseFee":null,"features":[],"stripePriceIds":[]}}}'
http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))
client = ChatarminOS(api_key="os_sk_x", base_url="https://x.test/api/v1", http_client=http)
assert client.tiers.get("pro").code == "pro"
assert not [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m]]
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_cached_answer_is_a_span_that_says_so(spans: InMemorySpanExporter) -> None:
    client = client_answering(ok(METERED_ACCESS), cache=True)
    client.features.check(company_id="c1", feature_code="ai_credit")  # live
    client.features.check(company_id="c1", feature_code="ai_credit")  # from the cache
    live, cached = spans.get_finished_spans()
    assert live.kind is SpanKind.CLIENT
    assert "chatarmin_os.cache_source" not in (live.attributes or {})
    assert cached.name == "chatarmin_os features.check"
    assert cached.kind is SpanKind.INTERNAL
    assert (cached.attributes or {})["chatarmin_os.cache_source"] == "cache"
