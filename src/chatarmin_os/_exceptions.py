"""The exception hierarchy, and the mapping from a tRPC error or an HTTP status to a class.

Every error the SDK raises derives from :class:`ChatarminOSError`. Errors never carry the
API key: messages are built from the procedure path, the server's message and a short
snippet of the body, never from request headers.
"""

from __future__ import annotations

from typing import Any

import httpx

from ._wire import TRPC_CODE_STATUS

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatarminOSError",
    "ConflictError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitError",
    "UnprocessableEntityError",
]


class ChatarminOSError(Exception):
    """Base class of every error raised by the ChatarminOS SDK."""


class InvalidInputError(ChatarminOSError, ValueError):
    """An argument was refused before anything was sent.

    Catchable as ``ValueError`` too. ``argument`` names the offending argument.
    """

    def __init__(self, argument: str, problem: str) -> None:
        self.argument = argument
        self.problem = problem
        super().__init__(f"{argument}: {problem}")


class APIConnectionError(ChatarminOSError):
    """The request could not be completed: DNS, refused connection, reset, TLS, ...

    ``request`` is the :class:`httpx.Request` that failed.
    """

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APITimeoutError(APIConnectionError):
    """The request timed out (connect, read, write or pool timeout)."""

    def __init__(self, request: httpx.Request, message: str = "Request timed out.") -> None:
        super().__init__(message, request=request)


class APIResponseValidationError(ChatarminOSError):
    """A successful answer did not have the shape the SDK expects for that procedure."""

    def __init__(self, message: str, *, path: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.response = response
        self.status_code = response.status_code


class APIStatusError(ChatarminOSError):
    """The server answered with an error.

    Attributes:
        status_code: the HTTP status of the answer.
        code: the tRPC error code (``"PRECONDITION_FAILED"``, ...), or ``None`` when the
            answer was not a tRPC error envelope (an HTML page from a proxy, say).
        message: the server's message, or a short description with a snippet of the body.
        path: the procedure that was called, e.g. ``"billing.trackUsage"``.
        response: the :class:`httpx.Response`.
        body: the decoded error object when there was one, else ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        path: str,
        code: str | None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.status_code = response.status_code
        self.path = path
        self.code = code
        self.body = body

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.status_code}{code} on {self.path}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the server refused the input (``BAD_REQUEST``, ``PARSE_ERROR``)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong (``UNAUTHORIZED``)."""


class PermissionDeniedError(APIStatusError):
    """403: no access to this resource, e.g. a feature that is not enabled (``FORBIDDEN``)."""


class NotFoundError(APIStatusError):
    """404: the company, feature, tier or procedure does not exist (``NOT_FOUND``)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state (``CONFLICT``)."""


class PreconditionFailedError(APIStatusError):
    """412: a usage limit would be exceeded (``PRECONDITION_FAILED``)."""


class UnprocessableEntityError(APIStatusError):
    """422: the input was understood but cannot be processed (``UNPROCESSABLE_CONTENT``)."""


class RateLimitError(APIStatusError):
    """429: too many requests (``TOO_MANY_REQUESTS``)."""


class InternalServerError(APIStatusError):
    """5xx: the server failed (``INTERNAL_SERVER_ERROR``, ``BAD_GATEWAY``, ...)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_class_for(status_code: int, code: str | None) -> type[APIStatusError]:
    """The exception class for an error answer.

    The tRPC code decides when the SDK knows it (its HTTP status per ``@trpc/server``);
    an unknown code, or none, falls back to the HTTP status of the answer.
    """
    status = TRPC_CODE_STATUS.get(code or "", status_code)
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)
