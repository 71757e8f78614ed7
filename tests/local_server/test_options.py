"""``ServerOptions``: one frozen, checked object that every way into the local server takes."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import httpx
import pytest

from chatarmin_os.local import LocalEngine, ServerOptions
from chatarmin_os.local.asgi import create_app
from chatarmin_os.local.cli import add_commands, server_options
from chatarmin_os.local.protocol import TRPCHandler, handle
from chatarmin_os.local.transport import LocalTransport
from chatarmin_os.testing import ChatarminOSServer
from tests.support.helpers import SERVER_KEY

KEY = SERVER_KEY
AUTH = {"authorization": f"Bearer {KEY}"}


def test_the_defaults() -> None:
    assert ServerOptions() == ServerOptions(
        prefix="/api/v1", transformer="auto", max_batch=100, batching=True, max_body=1048576
    )
    assert [f.name for f in dataclasses.fields(ServerOptions)] == [
        "prefix",
        "transformer",
        "max_batch",
        "batching",
        "max_body",
    ]


def test_options_are_frozen_and_replaced_with_checks() -> None:
    options = ServerOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.max_batch = 3  # type: ignore[misc]
    assert options.replace(max_batch=3).max_batch == 3
    assert options.replace() is options
    with pytest.raises(ValueError, match="max_batch"):
        options.replace(max_batch=0)
    with pytest.raises(TypeError):
        options.replace(max_bach=3)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"max_batch": 0}, ValueError),
        ({"max_batch": True}, ValueError),
        ({"max_batch": 2.5}, ValueError),
        ({"max_body": 0}, ValueError),
        ({"max_body": "1"}, ValueError),
        ({"transformer": "xml"}, ValueError),
        ({"batching": "no"}, TypeError),
        ({"prefix": 3}, TypeError),
        ({"prefix": "/api?v=1"}, ValueError),
        ({"prefix": "/api v1"}, ValueError),
    ],
)
def test_bad_options_are_refused(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        ServerOptions(**changes)


@pytest.mark.parametrize(
    ("given", "kept"), [("/api/v1", "/api/v1"), ("api/v1/", "/api/v1"), ("/", ""), ("", "")]
)
def test_the_prefix_is_normalised(given: str, kept: str) -> None:
    assert ServerOptions(prefix=given).prefix == kept


def test_the_handler_the_transport_and_the_app_take_options(keyed_engine: LocalEngine) -> None:
    options = ServerOptions(prefix="/trpc", max_batch=1)
    handler = TRPCHandler(keyed_engine, options)
    assert handler.options is options and handler.prefix == "/trpc"
    assert repr(handler) == f"TRPCHandler({options!r})"
    # Keywords of the field names adjust the options (kept for earlier callers).
    assert TRPCHandler(keyed_engine, options, batching=False).options == options.replace(
        batching=False
    )
    assert TRPCHandler(keyed_engine, max_body=10).options == ServerOptions(max_body=10)
    assert create_app(keyed_engine, options).handler.options is options
    assert LocalTransport(keyed_engine, options).handler.options is options
    answer = handle(
        keyed_engine, "GET", "/trpc/tiers.list,tiers.list", "batch=1", AUTH, b"", options
    )
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["message"] == "Batch call exceeds maximum size"


def test_serve_flags_make_the_options() -> None:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    default = parser.parse_args(["serve"])
    assert server_options(default) == ServerOptions()
    args = parser.parse_args(
        [
            "serve",
            "--transformer",
            "superjson",
            "--max-batch",
            "7",
            "--no-batching",
            "--max-body",
            "2048",
        ]
    )
    assert server_options(args) == ServerOptions(
        transformer="superjson", max_batch=7, batching=False, max_body=2048
    )


def test_the_testing_server_takes_options() -> None:
    options = ServerOptions(batching=False)
    with ChatarminOSServer(options=options) as server:
        answer = httpx.get(
            server.base_url + "/tiers.list,tiers.list?batch=1",
            headers={"authorization": f"Bearer {server.api_key}"},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == "Batching is not enabled on the server"
    # ``transformer`` alone still works, and wins over the options' one.
    with ChatarminOSServer(transformer="superjson", options=options) as server:
        assert server._http.options == options.replace(transformer="superjson")
