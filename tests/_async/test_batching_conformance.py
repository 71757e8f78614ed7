"""Batching against the real ``@trpc/server`` batch handler, in both transformer modes.

Every procedure of the shared case table, called at the same time through a client with
``batching=True``: the router must parse each input exactly as from a single call, answer in
one request per kind (``ceil(calls / max_items)``), and the client must make the same results
of it. Errors stay per call, and a router with batching turned off gets single calls.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import urlsplit

import pytest

from chatarmin_os import AsyncChatarminOS, BatchOptions, NotFoundError, PreconditionFailedError
from tests.support._async.batching_helpers import hold
from tests.support.cases import CASES, NO_INPUT, Case, plain, recorded
from tests.support.concurrently import arun_all
from tests.support.helpers import API_KEY
from tests.support.needs import start_reference_server
from tests.support.reference_server import ReferenceServer

# One case per procedure: the router answers each path with one canned output.
FIRST_OF_EACH: dict[str, Case] = {}
for _case in CASES:
    FIRST_OF_EACH.setdefault(_case.path, _case)
QUERIES = [case for case in FIRST_OF_EACH.values() if case.kind == "query"]
MUTATIONS = [case for case in FIRST_OF_EACH.values() if case.kind == "mutation"]


def batching_client(server: ReferenceServer, **options: Any) -> AsyncChatarminOS:
    return AsyncChatarminOS(
        api_key=API_KEY,
        base_url=server.base_url,
        transformer=server.mode,  # type: ignore[arg-type]
        max_retries=0,
        batching=BatchOptions(**options),
    )


def batch_paths(server: ReferenceServer) -> list[list[str]]:
    """The procedures of each HTTP request the router got, in order."""
    return [
        urlsplit(request["url"]).path.removeprefix("/api/v1/").split(",")
        for request in server.requests()
    ]


def sent_as(case: Case, call: dict[str, Any], mode: str) -> None:
    """The router parsed this call's input as it would from the call made alone."""
    if case.input == NO_INPUT:
        assert call["input"] is None
    else:
        assert call["input"] == recorded(case.input, mode), case.id


@pytest.mark.parametrize("kind", ["query", "mutation"])
async def test_every_procedure_batched_gives_what_it_gives_alone(
    conformance: ReferenceServer, kind: str
) -> None:
    cases = QUERIES if kind == "query" else MUTATIONS
    for case in cases:
        conformance.set_output(case.path, plain(case.output))
    async with batching_client(conformance) as client:
        hold(client, len(cases))
        results = await arun_all(*(lambda case=case: case.call(client) for case in cases))
    for case, result in zip(cases, results, strict=True):
        assert result == case.expected, case.id
    [paths] = batch_paths(conformance)  # one request: every call of the kind
    assert paths == [case.path for case in cases]
    [request] = conformance.requests()
    assert request["method"] == ("GET" if kind == "query" else "POST")
    assert urlsplit(request["url"]).query.startswith("batch=1")
    calls = {call["path"]: call for call in conformance.calls()}
    for case in cases:
        sent_as(case, calls[case.path], conformance.mode)


async def test_requests_are_bounded_by_max_items(conformance: ReferenceServer) -> None:
    conformance.set_output("features.check", plain(FIRST_OF_EACH["features.check"].output))
    codes = [f"feature_{i}" for i in range(23)]
    async with batching_client(conformance, max_items=5) as client:
        hold(client, len(codes))
        results = await arun_all(
            *(
                lambda code=code: client.features.check(company_id="comp_1", feature_code=code)
                for code in codes
            )
        )
    assert not [result for result in results if isinstance(result, Exception)]
    sizes = [len(paths) for paths in batch_paths(conformance)]
    assert len(sizes) == math.ceil(len(codes) / 5)
    assert sorted(sizes) == [3, 5, 5, 5, 5]
    assert sorted(call["input"]["featureCode"] for call in conformance.calls()) == sorted(codes)


async def test_errors_stay_with_their_calls(conformance: ReferenceServer) -> None:
    async with batching_client(conformance) as client:
        hold(client, 3)
        ok, missing, over = await arun_all(
            lambda: client.tiers.get("pro"),
            lambda: client.features.check(company_id="error:NOT_FOUND", feature_code="x"),
            lambda: client.tiers.get("error:PRECONDITION_FAILED"),
        )
    assert ok.code == "pro"
    assert type(missing) is NotFoundError
    assert (missing.status_code, missing.code, missing.path) == (404, "NOT_FOUND", "features.check")
    assert type(over) is PreconditionFailedError
    assert (over.status_code, over.path) == (412, "tiers.get")
    assert len(conformance.requests()) == 1


@pytest.fixture(scope="module", params=["json", "superjson"])
def unbatched_server(request: pytest.FixtureRequest) -> Any:
    server = start_reference_server(request.param, ("--no-batching",))
    try:
        yield server
    finally:
        server.stop()


async def test_a_router_without_batching_gets_single_calls(
    unbatched_server: ReferenceServer, caplog: pytest.LogCaptureFixture
) -> None:
    unbatched_server.reset()
    codes = ["free", "pro", "enterprise"]
    async with batching_client(unbatched_server) as client:
        with caplog.at_level(logging.WARNING, logger="chatarmin_os"):
            hold(client, 3)
            first = await arun_all(*(lambda code=code: client.tiers.get(code) for code in codes))
            hold(client, 3)
            second = await arun_all(*(lambda code=code: client.tiers.get(code) for code in codes))
    assert [tier.code for tier in first + second] == ["pro"] * 6  # the canned answer, 6 times
    paths = batch_paths(unbatched_server)
    assert paths[0] == ["tiers.get"] * 3  # refused whole: nothing ran
    assert paths[1:] == [["tiers.get"]] * 6  # then one by one, nothing lost, no batch again
    assert sorted(call["input"]["tierCode"] for call in unbatched_server.calls()) == sorted(
        codes * 2
    )
    assert len([r for r in caplog.records if "does not take tRPC batches" in r.getMessage()]) == 1
