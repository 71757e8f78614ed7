"""What the cache tests share: the local ChatarminOS behind a recording, failing transport,
and a clock moved by hand."""

from __future__ import annotations

from typing import Any

import httpx

from chatarmin_os.local.transport import LocalTransport
from chatarmin_os.testing import LocalChatarminOS
from tests.helpers import sent_input

__all__ = ["Clock", "Recorder"]


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
