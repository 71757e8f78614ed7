"""Hundreds of generated hostile answers through the client: only SDK errors escape.

Random JSON shapes in and out of tRPC envelopes, wrong types in ``error`` / ``data`` /
``result``, superjson metas that do not fit, binary garbage, megabyte strings, deep nesting,
odd content types and charsets, odd ``Retry-After`` headers, and every HTTP status from 100
to 599. For each answer a call either returns (a 2xx that happens to be a valid result) or
raises a ``ChatarminOSError`` of the right kind for the status, whose ``str()`` is at most
1000 characters and which survives pickling. The seed is fixed: a failure reproduces.
"""

from __future__ import annotations

import httpx

from chatarmin_os import AsyncChatarminOS
from tests.support.helpers import API_KEY, BASE_URL, resolve
from tests.support.hostile_answers import CALLS, SEED, Replay, answers, check


async def no_wait(seconds: float) -> None:
    """The async client's sleeper: retries happen, without waiting."""


async def test_hostile_answers() -> None:
    replay = Replay()
    for transformer in ("json", "superjson"):
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(replay)) as http,
            AsyncChatarminOS(
                api_key=API_KEY,
                base_url=BASE_URL,
                http_client=http,
                transformer=transformer,  # type: ignore[arg-type]
                max_retries=1,
                sleep=no_wait,
            ) as client,
        ):
            for index, answer in enumerate(answers(SEED)):
                replay.answer = answer
                name, args, kwargs = CALLS[index % len(CALLS)]
                try:
                    await resolve(client, name)(*args, **kwargs)
                except BaseException as error:  # anything at all: checked below
                    check(answer, error)
                else:
                    check(answer, None)
