"""The input-fuzz table and the local server under the generated calls.

The table of ``tests/support/fuzz_calls.py`` must cover every public method and signature;
the calls go through each client in ``tests/_async/test_fuzz_inputs.py`` (and its generated
twin), and here to the in-process local server, which must answer each with a tRPC envelope.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from chatarmin_os import ChatarminOS, ChatarminOSError
from chatarmin_os._procedures import PROCEDURES
from chatarmin_os.local import LocalEngine
from chatarmin_os.local.transport import LocalTransport
from tests.support.fuzz_calls import METHODS, SEED, Call, calls, public_methods
from tests.support.helpers import API_KEY, BASE_URL, TRANSFORMERS, resolve


def test_the_table_covers_every_public_method_and_signature() -> None:
    client = ChatarminOS(api_key=API_KEY, base_url=BASE_URL)
    # features.check_many sends many features.check calls: tests/_async/test_batching.py;
    # billing.track_usage_later checks as track_usage does: tests/_async/test_usage_buffer.py;
    # billing.reserve checks as track_usage does: tests/_async/test_reserve.py
    assert {m.name for m in METHODS} == public_methods(client) - {
        "features.check_many",
        "billing.track_usage_later",
        "billing.reserve",
    }
    assert {m.procedure for m in METHODS} == set(PROCEDURES)
    for method in METHODS:
        signature = inspect.signature(resolve(client, method.name))
        assert [p.name for p in method.params] == list(signature.parameters), method.name
        for param in method.params:
            default = signature.parameters[param.name].default
            assert param.required == (default is inspect.Parameter.empty), param.name
    client.close()


@contextmanager
def sync_client(transport: httpx.BaseTransport, transformer: str) -> Iterator[ChatarminOS]:
    """A blocking client on ``transport``, without retries."""
    with (
        httpx.Client(transport=transport) as http,
        ChatarminOS(
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=http,
            transformer=transformer,  # type: ignore[arg-type]
            max_retries=0,
        ) as client,
    ):
        yield client


def run_call(client: ChatarminOS, call: Call) -> BaseException | None:
    """Make one generated call; what it raised, if anything."""
    try:
        resolve(client, call.method.name)(*call.args, **call.kwargs)
    except BaseException as error:
        return error
    return None


class CheckedLocalServer(httpx.BaseTransport):
    """The local server in-process, checking every answer it gives: a tRPC envelope (or a
    batch of them), never a 500, always with a request id."""

    def __init__(self, engine: LocalEngine) -> None:
        self.inner = LocalTransport(engine)
        self.answers = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.answers += 1
        where = f"{request.method} {str(request.url)[:200]}"
        assert response.status_code != 500, (where, response.text[:500])
        assert response.headers.get("x-request-id", "").startswith("req_"), where
        payload = response.json()
        for item in payload if isinstance(payload, list) else [payload]:
            assert isinstance(item, dict) and set(item) in ({"result"}, {"error"}), where
            if "error" in item:
                error = item["error"].get("json", item["error"])
                assert set(error) == {"message", "code", "data"}, where
                assert error["data"]["httpStatus"] == response.status_code or (
                    response.status_code == 207
                ), where
        return response


@pytest.mark.parametrize("transformer", TRANSFORMERS)
def test_fuzzed_arguments_against_the_local_server(transformer: str) -> None:
    """The same generated calls, sent to the local server: whatever reaches it gets a tRPC
    answer (no 500, no traceback), and the client raises only its own errors."""
    engine = LocalEngine(api_keys=[API_KEY])
    server = CheckedLocalServer(engine)
    with sync_client(server, transformer) as client:
        for call in calls(SEED):
            error = run_call(client, call)
            if error is not None and not isinstance(error, ChatarminOSError):
                pytest.fail(f"{call.label}: {type(error).__name__} {str(error)[:300]}")
    engine.close()
    assert server.answers > 500  # calls the client refused never reach it
