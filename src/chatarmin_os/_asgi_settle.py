"""Settling a gate's hold once an ASGI app has answered: commit on success, release otherwise.

A dependency cannot see the status of the answer (an endpoint may ``return
JSONResponse(status_code=500)`` or set ``response.status_code``), but the ASGI stack can.
:class:`SettleAfterAnswer` wraps an app's whole stack (outside Starlette's error middleware,
so an unhandled exception is seen as the 500 it becomes): it watches the ``send`` of every
HTTP request and settles the admissions the request's gates registered in its scope
(:func:`register`) — committed as soon as a final body with a status below 400 went out,
released when the request ends any other way (an error status, an exception, a
cancellation, or a client that disconnected before the answer was complete).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from ._gating import succeeded

if TYPE_CHECKING:
    from ._async._gate import Admission

__all__ = ["SettleAfterAnswer", "register"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "chatarmin_os.answer"
"""Where a request's :class:`_Answer` is in its ASGI scope (copies of the scope share it)."""


class _Answer:
    """One request's answer as it goes out, and the admissions waiting for it."""

    __slots__ = ("admissions", "gone", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.gone = False
        self.admissions: list[Admission] = []

    async def settle(self, ok: bool) -> None:
        """Settle every admission registered so far, shielded from cancellation."""
        admissions, self.admissions = self.admissions, []
        with anyio.CancelScope(shield=True):
            for admission in admissions:
                await admission.settle(ok)


def register(scope: Scope, admission: Admission) -> bool:
    """Leave ``admission`` to be settled after the request's answer; ``False`` when the app
    is not wrapped in :class:`SettleAfterAnswer` (the caller settles it itself)."""
    answer = scope.get(SCOPE_KEY)
    if not isinstance(answer, _Answer):
        return False
    answer.admissions.append(admission)
    return True


class SettleAfterAnswer:
    """An ASGI app around ``app`` that settles gates' holds after each HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer()
        scope[SCOPE_KEY] = answer

        async def watched_send(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.start":
                answer.status = int(message["status"])
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                ok = answer.status is not None and succeeded(answer.status) and not answer.gone
                await answer.settle(ok)

        async def watched_receive() -> Message:
            message = await receive()
            if message.get("type") == "http.disconnect":
                answer.gone = True
            return message

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            await answer.settle(False)  # whatever did not get a successful answer
