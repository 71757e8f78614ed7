"""Shared test helpers: canned tRPC answers and request decoding (used by both variants)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from chatarmin_os._wire import superjson_deserialize, superjson_serialize

API_KEY = "os_sk_test_5ecret_do_not_leak"
BASE_URL = "https://os.example.test/api/v1"
TRANSFORMERS = ["json", "superjson"]

UNLIMITED_USAGE: dict[str, Any] = {
    "featureCode": "ai_credit",
    "currentUsage": 1,
    "quantityLimit": None,
    "includedQuantity": None,
    "remaining": None,
    "billableQuantity": 1,
    "isAtLimit": False,
    "duplicate": False,
}
"""A ``billing.trackUsage`` result without a limit (the first unit counted)."""


def envelope(data: Any, transformer: str) -> dict[str, Any]:
    """A tRPC success body."""
    return {"result": {"data": superjson_serialize(data) if transformer == "superjson" else data}}


def ok(
    data: Any, transformer: str = "json", headers: dict[str, str] | None = None
) -> httpx.Response:
    """A 200 tRPC answer carrying ``data``."""
    return httpx.Response(200, json=envelope(data, transformer), headers=headers)


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
    error = {
        "message": message,
        "code": -32600,
        "data": {"code": code, "httpStatus": status, "path": path},
    }
    body = {"error": superjson_serialize(error) if transformer == "superjson" else error}
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
