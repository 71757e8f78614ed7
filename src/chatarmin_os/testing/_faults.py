"""Fault injection for the local ChatarminOS: make the next calls to a procedure fail.

One :class:`Faults` object per :class:`~chatarmin_os.testing.LocalChatarminOS`, consulted
by every way of reaching it: the in-process httpx transports of its clients
(:class:`FaultTransport`, :class:`AsyncFaultTransport`) and the live HTTP server
(:class:`~chatarmin_os.testing.ChatarminOSServer`). A fault is one of:

* an error answer (``fail_next``): any HTTP status, as a tRPC error envelope (or a raw body,
  as a proxy would send), with ``Retry-After`` when asked; the call is not applied;
* a timeout (``timeout_next``): in-process the transport raises ``httpx.ReadTimeout`` at
  once; over HTTP the server holds the answer until the client gives up (bounded by
  ``hold``); not applied unless ``applied=True``;
* a dropped answer (``drop_next``): the call is applied, then the connection is closed
  with no response (``httpx.RemoteProtocolError``), as when a network fails mid-answer.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .._procedures import PROCEDURES
from .._wire import TRPC_CODE_NUMBER, TRPC_CODE_STATUS, dumps
from ..local.protocol import DEFAULT_PREFIX, REQUEST_ID_HEADER, new_request_id, request_summary

__all__ = [
    "AsyncFaultTransport",
    "Fault",
    "FaultKind",
    "FaultTransport",
    "Faults",
    "FiredFault",
]

FaultKind = Literal["status", "timeout", "drop"]

ANY_PROCEDURE = "*"
"""Matches every procedure in ``fail_next`` / ``timeout_next`` / ``drop_next``."""

DEFAULT_HOLD = 60.0
"""Longest the live server holds a timed-out answer (it stops earlier when the client leaves)."""

# The tRPC code @trpc/server would send with an HTTP status (400 -> BAD_REQUEST).
_CODE_FOR_STATUS = {status: code for code, status in TRPC_CODE_STATUS.items()}


@dataclass
class Fault:
    """One pending fault: what to do to the next ``remaining`` calls of ``procedure``."""

    procedure: str
    kind: FaultKind
    remaining: int
    status: int = 503
    code: str | None = None
    message: str = ""
    retry_after: float | None = None
    body: bytes | None = None
    applied: bool = False
    hold: float = DEFAULT_HOLD

    def matches(self, paths: Sequence[str]) -> bool:
        """Whether a request for ``paths`` (one, or a batch) is hit by this fault."""
        return self.procedure == ANY_PROCEDURE or self.procedure in paths

    def answer(self, paths: Sequence[str], superjson: bool) -> tuple[int, dict[str, str], bytes]:
        """The error answer of a ``status`` fault: status, headers, body."""
        headers = {"content-type": "application/json", REQUEST_ID_HEADER: new_request_id()}
        if self.retry_after is not None:
            seconds = self.retry_after
            headers["retry-after"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        if self.body is not None:
            headers["content-type"] = "text/plain; charset=utf-8"
            return self.status, headers, self.body
        if self.code is None:
            # A status tRPC never sends (418, 507, ...): answer as a proxy would.
            headers["content-type"] = "text/plain; charset=utf-8"
            return self.status, headers, f"HTTP {self.status}".encode()

        code = self.code

        def envelope(path: str) -> dict[str, Any]:
            shape = {
                "message": self.message or f"Injected fault ({code})",
                "code": TRPC_CODE_NUMBER.get(code, -32603),
                "data": {"code": code, "httpStatus": self.status, "path": path},
            }
            return {"error": {"json": shape} if superjson else shape}

        payload: Any = [envelope(p) for p in paths] if len(paths) > 1 else envelope(paths[0])
        return self.status, headers, dumps(payload).encode("utf-8")


@dataclass(frozen=True)
class FiredFault:
    """A fault that hit a call: which procedure(s), and what happened."""

    procedure: str
    kind: FaultKind
    status: int | None


class Faults:
    """Make the next calls to a procedure fail; thread-safe, shared by every way in.

    Example::

        chatarmin_os_local.faults.fail_next("billing.trackUsage", times=2, status=503)
        chatarmin_os_local.faults.fail_next("features.check", status=429, retry_after=0)
        chatarmin_os_local.faults.timeout_next("companies.getByProductLink")
        chatarmin_os_local.faults.drop_next("billing.trackUsage")

    Faults queue up in order; ``"*"`` stands for every procedure. :attr:`fired` lists the
    faults that hit, :meth:`pending` those still waiting, :meth:`clear` drops them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Fault] = []
        self.fired: list[FiredFault] = []
        """Every fault that hit a call, oldest first."""

    def __repr__(self) -> str:
        return f"<Faults pending={len(self._pending)} fired={len(self.fired)}>"

    def fail_next(
        self,
        procedure: str,
        *,
        times: int = 1,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        message: str | None = None,
        body: str | bytes | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``procedure`` with an error, without applying them.

        ``status`` (default 503, or the status of ``code``) and ``code`` (a tRPC code such as
        ``"TOO_MANY_REQUESTS"``; default the one tRPC gives ``status``) make a tRPC error
        envelope; ``retry_after`` adds a ``Retry-After`` header (seconds; ``0`` lets the
        SDK retry at once); ``body`` sends that raw text instead (an HTML page from a proxy).
        """
        if code is not None and code not in TRPC_CODE_STATUS:
            raise ValueError(f"unknown tRPC code {code!r}; known: {', '.join(TRPC_CODE_STATUS)}")
        if status is None:
            status = TRPC_CODE_STATUS[code] if code is not None else 503
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        if code is None:
            code = _CODE_FOR_STATUS.get(status)
        if retry_after is not None and (isinstance(retry_after, bool) or retry_after < 0):
            raise ValueError(f"retry_after must be seconds >= 0, got {retry_after!r}")
        raw = body.encode("utf-8") if isinstance(body, str) else body
        self._add(
            Fault(
                _procedure(procedure),
                "status",
                _times(times),
                status=status,
                code=code,
                message=message or "",
                retry_after=retry_after,
                body=raw,
            )
        )

    def timeout_next(
        self,
        procedure: str,
        *,
        times: int = 1,
        applied: bool = False,
        hold: float = DEFAULT_HOLD,
    ) -> None:
        """Let the next ``times`` calls of ``procedure`` time out.

        In-process the transport raises ``httpx.ReadTimeout`` at once; over HTTP the server
        holds the answer until the client gives up (give your client a short ``timeout``),
        at most ``hold`` seconds. ``applied=True`` applies the call first (the answer is lost).
        """
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or hold <= 0:
            raise ValueError(f"hold must be seconds > 0, got {hold!r}")
        self._add(
            Fault(
                _procedure(procedure),
                "timeout",
                _times(times),
                applied=bool(applied),
                hold=float(hold),
            )
        )

    def drop_next(self, procedure: str, *, times: int = 1) -> None:
        """Apply the next ``times`` calls of ``procedure``, then close the connection unanswered."""
        self._add(Fault(_procedure(procedure), "drop", _times(times), applied=True))

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[Fault]:
        """The faults still waiting, in the order they will hit (copies)."""
        with self._lock:
            return [Fault(**vars(fault)) for fault in self._pending]

    @property
    def armed(self) -> bool:
        """Whether any fault is pending (read without the lock: a hint that lets a request
        skip working out its paths when nothing can hit it)."""
        return bool(self._pending)

    def take(self, paths: Sequence[str]) -> Fault | None:
        """Consume and return the fault for a request of ``paths``, if one is pending."""
        with self._lock:
            for index, fault in enumerate(self._pending):
                if fault.matches(paths):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        del self._pending[index]
                    status = fault.status if fault.kind == "status" else None
                    self.fired.append(FiredFault(",".join(paths), fault.kind, status))
                    return fault
        return None

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._pending.append(fault)


def _procedure(procedure: str) -> str:
    if procedure == ANY_PROCEDURE or procedure in PROCEDURES:
        return procedure
    close = difflib.get_close_matches(str(procedure), PROCEDURES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown procedure {procedure!r}{hint} (procedure paths: 'billing.trackUsage')"
    )


def _times(times: int) -> int:
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be an int >= 1, got {times!r}")
    return times


# -- reading a request ------------------------------------------------------------------------


def request_summary_of(
    prefix: str, method: str, target: str, body: bytes
) -> tuple[list[str], bool] | None:
    """(procedure paths, superjson-shaped input) of a request to ``target`` (path and query
    as sent), read by the local server's own request parsing; ``None`` when the server
    refuses it before reading a path (no fault hits it then)."""
    raw_path, _, query = target.partition("?")
    return request_summary(prefix, method, raw_path, query, body)


# -- the in-process transports -----------------------------------------------------------------


def _status_response(
    fault: Fault, request: httpx.Request, paths: list[str], superjson: bool
) -> httpx.Response:
    status, headers, content = fault.answer(paths, superjson)
    return httpx.Response(status, headers=headers, content=content, request=request)


def _summary(prefix: str, request: httpx.Request, body: bytes) -> tuple[list[str], bool] | None:
    return request_summary_of(prefix, request.method, request.url.raw_path.decode("ascii"), body)


class FaultTransport(httpx.BaseTransport):
    """A blocking httpx transport that applies :class:`Faults` before ``inner`` answers
    (requests read as the local server mounted at ``prefix`` reads them)."""

    def __init__(
        self, inner: httpx.BaseTransport, faults: Faults, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.inner = inner
        self.faults = faults
        self.prefix = prefix

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request``, or fail it as the next pending fault says."""
        if not self.faults.armed:
            return self.inner.handle_request(request)
        summary = _summary(self.prefix, request, request.read())
        fault = self.faults.take(summary[0]) if summary is not None else None
        if fault is None or summary is None:
            return self.inner.handle_request(request)
        if fault.kind == "status":
            return _status_response(fault, request, *summary)
        if fault.applied:
            self.inner.handle_request(request).close()
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("Injected fault: timed out", request=request)
        raise httpx.RemoteProtocolError(
            "Injected fault: server disconnected without sending a response.", request=request
        )

    def close(self) -> None:
        """Close the inner transport."""
        self.inner.close()


class AsyncFaultTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`FaultTransport`."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, faults: Faults, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.inner = inner
        self.faults = faults
        self.prefix = prefix

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request``, or fail it as the next pending fault says."""
        if not self.faults.armed:
            return await self.inner.handle_async_request(request)
        summary = _summary(self.prefix, request, await request.aread())
        fault = self.faults.take(summary[0]) if summary is not None else None
        if fault is None or summary is None:
            return await self.inner.handle_async_request(request)
        if fault.kind == "status":
            return _status_response(fault, request, *summary)
        if fault.applied:
            await (await self.inner.handle_async_request(request)).aclose()
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("Injected fault: timed out", request=request)
        raise httpx.RemoteProtocolError(
            "Injected fault: server disconnected without sending a response.", request=request
        )

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.inner.aclose()
