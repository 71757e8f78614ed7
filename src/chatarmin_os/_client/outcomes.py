"""What one attempt of a request ends in, and how a failed send becomes an SDK error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic

from .._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ChatarminOSError,
)
from .._response import unusable_answer
from .._types import HTTPResponse
from . import library
from .request import WireRequest

__all__ = ["BodyDecodingError", "Failure", "Success", "parse_output", "send_failure"]

_T = TypeVar("_T")

# Transport failures after which the request certainly never reached the server.
_NEVER_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")

_MAX_DETAIL = 200


class BodyDecodingError(Exception):
    """The answer's body could not be decoded (broken gzip/deflate/brotli); ``response`` has the rest."""

    def __init__(self, response: HTTPResponse) -> None:
        super().__init__("the answer's body could not be decoded")
        self.response = response


class Success:
    """One call's decoded output and the answer that carried it."""

    __slots__ = ("output", "response")

    def __init__(self, output: Any, response: HTTPResponse) -> None:
        self.output = output
        self.response = response


class Failure:
    """How one attempt failed: the SDK error, its cause, and what decides a retry."""

    __slots__ = ("cause", "error", "response", "retryable", "was_sent")

    def __init__(
        self,
        error: ChatarminOSError,
        *,
        cause: BaseException | None,
        response: HTTPResponse | None = None,
        was_sent: bool = True,
        retryable: bool = True,
    ) -> None:
        self.error = error
        self.cause = cause
        self.response = response
        self.was_sent = was_sent
        self.retryable = retryable


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "…"


def _undecodable(response: HTTPResponse, path: str) -> ChatarminOSError:
    encoding = response.headers.get("content-encoding", "?")
    message = (
        f"The answer from {path} (HTTP {response.status_code}) has a body that cannot be "
        f"decoded (content-encoding {encoding[:40]!r})."
    )
    return unusable_answer(response, path, message)


def send_failure(exc: Exception, request: WireRequest, path: str) -> Failure:
    """The one error mapping of a send that raised: every transport's exception becomes a
    :class:`Failure` (a ``ChatarminOSError`` from the pool, i.e. a closed pool, is re-raised).
    httpx's and httpx2's exceptions map alike."""
    if isinstance(exc, ChatarminOSError):
        raise exc
    if isinstance(exc, BodyDecodingError):
        return Failure(
            _undecodable(exc.response, path),
            cause=exc.__cause__,
            response=exc.response,
            retryable=False,
        )
    lib = library.of_error(exc)
    if lib is None:
        # Anything else from a caller's transport (e.g. a pool used under a closed event
        # loop) or an in-process server is still a failed call, never a bare exception.
        return Failure(
            APIConnectionError(
                f"Could not call {path}: {type(exc).__name__}: {_short(exc)}",
                request=request.sent,
            ),
            cause=exc,
        )
    if isinstance(exc, lib.InvalidURL):
        raise ChatarminOSError(f"Cannot build the URL of {path}: {exc}") from None
    never_sent = isinstance(exc, tuple(getattr(lib, name) for name in _NEVER_SENT))
    if isinstance(exc, lib.TimeoutException):
        return Failure(
            APITimeoutError(request.sent, f"Request to {path} timed out ({type(exc).__name__})."),
            cause=exc,
            was_sent=not never_sent,
        )
    if isinstance(exc, lib.TooManyRedirects):
        return Failure(
            APIConnectionError(f"Too many redirects calling {path}.", request=request.sent),
            cause=exc,
            retryable=False,
        )
    if isinstance(exc, lib.TransportError):
        return Failure(
            APIConnectionError(
                f"Connection error calling {path}: {type(exc).__name__}: {_short(exc)}",
                request=request.sent,
            ),
            cause=exc,
            was_sent=not never_sent,
        )
    # Anything else from the library (a stream error, a status error of a hook) is still a
    # failed call.
    return Failure(
        APIConnectionError(
            f"Could not call {path}: {type(exc).__name__}: {_short(exc)}",
            request=request.sent,
        ),
        cause=exc,
    )


def parse_output(parse: Callable[[Any], _T], output: Any, path: str, response: HTTPResponse) -> _T:
    """``parse(output)``; what it refuses becomes an :class:`APIResponseValidationError`."""
    try:
        return parse(output)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise APIResponseValidationError(
            f"Unexpected output from {path}: {where}: {first['msg']} "
            f"({exc.error_count()} problem(s))",
            path=path,
            response=response,
        ) from exc
    except Exception as exc:  # e.g. RecursionError on absurdly nested output
        raise APIResponseValidationError(
            f"Unexpected output from {path}: {type(exc).__name__}", path=path, response=response
        ) from exc
