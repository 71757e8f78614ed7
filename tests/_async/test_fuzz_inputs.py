"""Every public method of the client under a few thousand generated argument combinations.

Each argument is a valid value or a hostile one (wrong types, huge or odd numbers, deep and
circular structures, lone surrogates, control characters, ``None``, ``NOT_GIVEN``). A
recording mock server answers every request with a valid output. For each call exactly one
of two things may happen: it is refused with ``InvalidInputError`` and nothing was sent, or
exactly one request was sent, carrying well-formed UTF-8 JSON, and the call returned its
result. Anything else (another exception, a request sent and then an error, a message over
1000 characters) fails the test. The seed is fixed: a failure reproduces.
"""

from __future__ import annotations

import httpx
import pytest

from chatarmin_os import AsyncChatarminOS
from tests.support.canned import CannedServer
from tests.support.fuzz_calls import SEED, Tally, calls, check_refused, check_sent, check_tally
from tests.support.helpers import API_KEY, BASE_URL, TRANSFORMERS, resolve


@pytest.mark.parametrize("transformer", TRANSFORMERS)
async def test_fuzzed_arguments(transformer: str) -> None:
    server = CannedServer(transformer)
    tally = Tally()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(server)) as http,
        AsyncChatarminOS(
            api_key=API_KEY,
            base_url=BASE_URL,
            http_client=http,
            transformer=transformer,  # type: ignore[arg-type]
            max_retries=0,
        ) as client,
    ):
        for call in calls(SEED):
            server.requests.clear()
            try:
                await resolve(client, call.method.name)(*call.args, **call.kwargs)
            except BaseException as error:  # anything at all: it must be a refusal
                check_refused(call, error, server, tally)
            else:
                check_sent(call, server, tally)
    check_tally(tally)
