"""What the cache tests share: the local ChatarminOS behind a recording, failing transport,
a clock moved by hand, clients with a cache over a handler, and waiting for another thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from chatarmin_os import AsyncChatarminOS, CacheOptions, ChatarminOS
from chatarmin_os.local.engine import DEFAULT_API_KEY
from chatarmin_os.local.transport import LocalTransport
from chatarmin_os.testing import LocalChatarminOS
from tests.support.helpers import sent_input

__all__ = [
    "BASE_URL",
    "DEADLINE",
    "Clock",
    "Recorder",
    "async_client",
    "sync_client",
    "wait_until",
]

BASE_URL = "http://chatarmin-os.local/api/v1"
DEADLINE = 10.0
"""Seconds a wait for another thread (or task, or process) may take before the test fails."""


class Recorder:
    """The local ChatarminOS behind an ``httpx.MockTransport`` handler: every request is
    recorded (procedure and decoded input) and answered by the engine, unless ``failure``
    is set (an exception to raise, or a response to give)."""

    def __init__(self) -> None:
        self.local = LocalChatarminOS()
        self._transport = LocalTransport(self.local.engine)
        self.calls: list[str] = []
        self.inputs: list[Any] = []
        self.failure: httpx.Response | Exception | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path.rsplit("/", 1)[-1])
        self.inputs.append(sent_input(request))
        failure = self.failure
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return failure
        return self._transport.handle_request(request)

    def take(self) -> list[str]:
        """The procedures called since the last ``take()``."""
        calls, self.calls = self.calls, []
        return calls

    def company(self, external_org_id: str = "org_1", **seed: Any) -> str:
        """A company linked to ``external_org_id`` (free tier unless ``seed`` says otherwise)."""
        seed.setdefault("tier", "free")
        return self.local.add_company("Acme", external_org_id=external_org_id, **seed)

    def call(self, path: str, payload: dict[str, Any]) -> Any:
        """Change the server behind the clients' back (as the dashboard or another app would)."""
        return self.local.engine.call(path, payload, api_key=self.local.api_key)


class Clock:
    """Monotonic seconds moved by hand (``CacheOptions(clock=...)``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sync_client(
    handler: Callable[[httpx.Request], Any], clock: Clock | None = None, **options: Any
) -> ChatarminOS:
    """A blocking client with a cache, its requests answered by ``handler`` (a
    :class:`Recorder`, say): ``CacheOptions(clock=clock, jitter=0, **options)``, so entries
    expire exactly when the clock says."""
    options.setdefault("jitter", 0)
    client = ChatarminOS(
        api_key=DEFAULT_API_KEY,
        base_url=BASE_URL,
        max_retries=0,
        cache=CacheOptions(clock=clock, **options),
    )
    client._own_pool(lambda: httpx.Client(transport=httpx.MockTransport(handler)))
    return client


def async_client(
    handler: Callable[[httpx.Request], Any], clock: Clock | None = None, **options: Any
) -> AsyncChatarminOS:
    """The async twin of :func:`sync_client`."""
    options.setdefault("jitter", 0)
    client = AsyncChatarminOS(
        api_key=DEFAULT_API_KEY,
        base_url=BASE_URL,
        max_retries=0,
        cache=CacheOptions(clock=clock, **options),
    )
    client._own_pool(lambda: httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return client


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Block until ``condition()`` (checked every millisecond), failing after :data:`DEADLINE`."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.001)  # polling a condition another thread sets
