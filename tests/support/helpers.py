"""Shared test helpers: canned tRPC answers and request decoding (used by both variants)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from chatarmin_os._wire import superjson_deserialize, superjson_serialize

API_KEY = "os_sk_test_5ecret_do_not_leak"
BASE_URL = "https://os.example.test/api/v1"
TRANSFORMERS = ["json", "superjson"]
SERVER_KEY = "os_sk_local_server"
"""The API key the local server's ``keyed_engine`` fixture accepts."""


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true`` or ``CI=1``, any case): there a missing
    service (Node.js, redis-server, an extra) fails the test instead of skipping it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def envelope(data: Any, transformer: str) -> dict[str, Any]:
    """A tRPC success body."""
    return {"result": {"data": superjson_serialize(data) if transformer == "superjson" else data}}


def ok(
    data: Any, transformer: str = "json", headers: dict[str, str] | None = None
) -> httpx.Response:
    """A 200 tRPC answer carrying ``data``."""
    return httpx.Response(200, json=envelope(data, transformer), headers=headers)


def error_envelope(
    code: str,
    status: int,
    *,
    message: str = "something went wrong",
    path: str = "features.check",
    transformer: str = "json",
) -> dict[str, Any]:
    """A tRPC error body (one call's, or one element of a batch's) as @trpc/server v11
    shapes it."""
    error = {
        "message": message,
        "code": -32600,
        "data": {"code": code, "httpStatus": status, "path": path},
    }
    return {"error": superjson_serialize(error) if transformer == "superjson" else error}


def trpc_error(
    code: str,
    status: int,
    *,
    message: str = "something went wrong",
    path: str = "features.check",
    transformer: str = "json",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """An error answer shaped as @trpc/server v11 shapes it."""
    body = error_envelope(code, status, message=message, path=path, transformer=transformer)
    return httpx.Response(status, json=body, headers=headers)


def sent_input(request: httpx.Request, transformer: str = "json") -> Any:
    """The input a request carries, decoded (superjson unwrapped)."""
    if request.method == "GET":
        values = parse_qs(urlsplit(str(request.url)).query).get("input")
        if values is None:
            return "<no input>"
        raw = json.loads(values[0])
    else:
        raw = json.loads(request.content)
    return superjson_deserialize(raw) if transformer == "superjson" else raw


def raw_input(request: httpx.Request) -> Any:
    """The JSON a request carries as it is on the wire (no unwrapping)."""
    if request.method == "GET":
        values = parse_qs(urlsplit(str(request.url)).query).get("input")
        return None if values is None else json.loads(values[0])
    return json.loads(request.content)


T0 = datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)


class Clock:
    """A fixed clock the tests move by hand (inject it as ``LocalEngine(clock=...)``)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Sleeps:
    """An injected sleeper that records instead of waiting (``sleep=Sleeps()``), for both
    clients: the blocking one calls it, the async one awaits what the call returns, which is
    done at once. (One class serves ``tests/_async`` and the generated ``tests/_sync``.)"""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> _Slept:
        self.calls.append(seconds)
        return _Slept()


class _Slept:
    """An awaitable that completes at once without yielding to the event loop (as an
    ``async def`` that awaits nothing); ignored by the blocking client."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


def run_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stripped stdout (it must exit 0)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def resolve(client: Any, name: str) -> Any:
    """The bound method ``name`` (``"features.check"``, ``"onboard"``) of ``client``."""
    target = client
    for part in name.split("."):
        target = getattr(target, part)
    return target
