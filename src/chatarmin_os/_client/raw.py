"""Raw responses (``client.with_raw_response``) and request ids on results.

A raw call runs the plain method with a :class:`RawCapture` set in a context variable; the
request loop records there the request and answer of each call it completes in that context
(:func:`record`), and the wrapper returns an :class:`APIResponse` around the last one and
the method's own result. So ``parse()`` returns exactly what the plain call returns, and no
method is written twice. Raw calls are never answered from the entitlement cache
(:func:`raw_call_active`): they always ask the server.
"""

from __future__ import annotations

import datetime
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._exceptions import ChatarminOSError, request_id_of
from .._types import HTTPRequest, HTTPResponse

if TYPE_CHECKING:
    from .._batching import Call

__all__ = ["APIResponse", "RawCapture", "raw_call_active", "record", "with_request_id"]

_T = TypeVar("_T")


class APIResponse(Generic[_T]):
    """The HTTP answer of a call made through ``client.with_raw_response``, and its result.

    Attributes:
        status_code: the HTTP status (``200``).
        headers: the answer's headers (``x-request-id`` among them).
        http_request: the :class:`httpx.Request` that was sent (its ``Authorization`` header
            is masked in its ``repr``).
        http_response: the :class:`httpx.Response`.
        elapsed: how long the request took, from sending to the decoded answer.
        request_id: the answer's ``x-request-id``, or ``None``.

    :meth:`parse` returns what the plain call returns. For a method that sends several
    requests (an org looked up first, ``check_many`` over several batches) this is the last
    one; calls of one batch share its answer.
    """

    __slots__ = ("_result", "elapsed", "headers", "http_request", "http_response", "status_code")

    def __init__(
        self,
        result: _T,
        response: HTTPResponse,
        request: HTTPRequest,
        elapsed: datetime.timedelta,
    ) -> None:
        self._result = result
        self.http_response = response
        self.http_request = request
        self.status_code = response.status_code
        self.headers = response.headers
        self.elapsed = elapsed

    @property
    def request_id(self) -> str | None:
        """The answer's ``x-request-id`` header (``"req_..."``), or ``None``."""
        return request_id_of(self.http_response)

    def parse(self) -> _T:
        """What the plain call returns (the same object each time)."""
        return self._result

    def __repr__(self) -> str:
        return (
            f"<APIResponse [{self.status_code}] {self.http_request.method} "
            f"{self.http_request.url.path!r} request_id={self.request_id!r}>"
        )


class RawCapture:
    """The request and answer of the last call completed while a raw call runs."""

    __slots__ = ("call",)

    def __init__(self) -> None:
        self.call: Call | None = None

    def response(self, result: _T) -> APIResponse[_T]:
        """The :class:`APIResponse` of the last call, carrying ``result``."""
        call = self.call
        if call is None or call.response is None or call.request is None:
            raise ChatarminOSError("This call sent no request, so it has no raw response.")
        elapsed = datetime.timedelta(seconds=call.elapsed)
        try:  # what was sent (your http_client's defaults included)
            request = call.response.request
        except RuntimeError:  # an in-process answer: no httpx request was needed, make it
            request = call.request.to_httpx()
        return APIResponse(result, call.response, request, elapsed)


_capture: ContextVar[RawCapture | None] = ContextVar("chatarmin_os_raw_capture", default=None)


def start_capture() -> tuple[RawCapture, Any]:
    """Start capturing in this context; returns the capture and the token to reset with."""
    capture = RawCapture()
    return capture, _capture.set(capture)


def stop_capture(token: Any) -> None:
    """Stop the capture :func:`start_capture` began."""
    _capture.reset(token)


def raw_call_active() -> bool:
    """Whether a raw call runs in this context (then the cache does not answer)."""
    return _capture.get() is not None


def record(call: Call) -> None:
    """Note ``call`` (just completed) for the raw call running in this context, if any."""
    capture = _capture.get()
    if capture is not None:
        capture.call = call


def with_request_id(result: _T, response: HTTPResponse | None) -> _T:
    """``result`` with the answer's request id on it (each item of a list result)."""
    request_id = request_id_of(response)
    if request_id is None:
        return result
    items = result if isinstance(result, list) else (result,)
    for item in items:
        private = getattr(item, "__pydantic_private__", None)
        if isinstance(private, dict) and "_request_id" in private:
            private["_request_id"] = request_id
    return result
