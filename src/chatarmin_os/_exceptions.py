"""The exception hierarchy, and the mapping from a tRPC error or an HTTP status to a class.

Every error the SDK raises derives from :class:`ChatarminOSError`. Errors never carry the
API key: messages are built from the procedure path, the server's message and a short
snippet of the body, never from request headers.

Messages are bounded: ``str(error)`` is at most :data:`MAX_MESSAGE_CHARS` characters
whatever the server sent or the caller passed (a longer text is cut, with a note saying how
much was left out). The full data stays on the exception: ``.message`` keeps the server's
whole message, ``.body`` the decoded error object, ``.response`` the answer.

Every exception survives ``pickle`` (``ProcessPoolExecutor``, Celery) and ``copy.copy`` with
its message, code, status and path. A pickled ``.response`` / ``.request`` comes back as a
rebuilt :class:`httpx.Response` / :class:`httpx.Request` with the status, the response
headers and body, the method and the URL, but without the request's headers: the
``Authorization`` header never travels with a pickled exception. A ``.body`` nested more than
100 levels deep (only a hostile server sends one) comes back as ``None``.
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
    "ConfigurationError",
    "ConflictError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitError",
    "UnprocessableEntityError",
]

MAX_MESSAGE_CHARS = 1000
"""The longest ``str(error)`` of any SDK error, in characters."""


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, with a note of how many were left out."""
    if len(text) <= limit:
        return text
    keep = limit - len(f"… [{len(text)} more characters]")
    if keep <= 0:
        return text[:limit]
    return f"{text[:keep]}… [{len(text) - keep} more characters]"


class ChatarminOSError(Exception):
    """Base class of every error raised by the ChatarminOS SDK.

    ``str()`` of any SDK error is at most 1000 characters; ``pickle`` and ``copy.copy``
    keep every attribute (see the module docstring for ``response`` / ``request``).
    """

    def __str__(self) -> str:
        return shorten(super().__str__(), MAX_MESSAGE_CHARS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        state = {name: _portable(value) for name, value in self.__dict__.items()}
        return (_restore, (type(self), self.args), state)

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        for name, value in (state or {}).items():
            setattr(self, name, _revive(value))

    def __copy__(self) -> ChatarminOSError:
        clone = type(self).__new__(type(self), *self.args)
        clone.__dict__.update(self.__dict__)
        return clone


class ConfigurationError(ChatarminOSError, ValueError):
    """A client option (``api_key``, ``base_url``, ``timeout``, ...) was refused.

    Raised when the client is made (or by ``with_options``), never later. Catchable as
    ``ValueError`` too. The message never contains the API key.
    """


class InvalidInputError(ChatarminOSError, ValueError):
    """An argument was refused before anything was sent.

    Catchable as ``ValueError`` too. ``argument`` names the offending argument (with a
    path into it for nested values, e.g. ``metadata.a.b``); ``problem`` says what is wrong.
    A refused value is never quoted whole: at most a short prefix of it.
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
    """A successful answer did not have the shape the SDK expects for that procedure.

    ``message`` says what was wrong, ``path`` is the procedure, ``response`` the answer.
    """

    def __init__(self, message: str, *, path: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.response = response
        self.status_code = response.status_code


_CODE_CHARS = 64
_PATH_CHARS = 200


class APIStatusError(ChatarminOSError):
    """The server answered with an error.

    Attributes:
        status_code: the HTTP status of the answer.
        code: the tRPC error code (``"PRECONDITION_FAILED"``, ...), or ``None`` when the
            answer was not a tRPC error envelope (an HTML page from a proxy, say).
        message: the server's message, whole (``str(error)`` shows at most 1000 characters
            of it), or a short description with a snippet of the body.
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
        code = f" {shorten(self.code, _CODE_CHARS)}" if self.code else ""
        head = f"{self.status_code}{code} on {shorten(self.path, _PATH_CHARS)}: "
        return head + shorten(self.message, MAX_MESSAGE_CHARS - len(head))


class BadRequestError(APIStatusError):
    """400: the server refused the input (``BAD_REQUEST``, ``PARSE_ERROR``)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong (``UNAUTHORIZED``)."""


class PermissionDeniedError(APIStatusError):
    """403: no access to this resource, e.g. a feature that is not enabled (``FORBIDDEN``)."""


ForbiddenError = PermissionDeniedError
"""Another name of :class:`PermissionDeniedError` (403, ``FORBIDDEN``), as tRPC calls it."""


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

    A tRPC code the SDK knows decides (its HTTP status per ``@trpc/server``); any other
    code (unknown, or made up by a hostile answer), or none, falls back to the HTTP status
    of the answer.
    """
    status = TRPC_CODE_STATUS.get(code, status_code) if isinstance(code, str) else status_code
    if status >= 500:
        return InternalServerError
    return _BY_STATUS.get(status, APIStatusError)


# --- pickling -----------------------------------------------------------------------------
# httpx objects pickle with the request's headers, the API key among them: an exception
# travels as plain data instead, and comes back with a rebuilt request and response.

_DROPPED_RESPONSE_HEADERS = frozenset({b"content-encoding", b"transfer-encoding"})


class _PortableRequest:
    __slots__ = ("method", "url")

    def __init__(self, request: httpx.Request) -> None:
        self.method = request.method
        self.url = str(request.url)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_portable_request, (self.method, self.url))

    def revive(self) -> httpx.Request:
        return httpx.Request(self.method, self.url)


class _PortableResponse:
    __slots__ = ("content", "headers", "request", "status_code")

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        # The body is already decoded: its Content-Encoding no longer applies.
        self.headers = [
            (name, value)
            for name, value in response.headers.raw
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        ]
        try:
            self.content = response.content
        except httpx.ResponseNotRead:
            self.content = b""
        try:
            self.request: _PortableRequest | None = _PortableRequest(response.request)
        except RuntimeError:  # a response made without a request
            self.request = None

    def __reduce__(self) -> tuple[Any, ...]:
        request = (self.request.method, self.request.url) if self.request else None
        return (_portable_response, (self.status_code, self.headers, self.content, request))

    def revive(self) -> httpx.Response:
        return httpx.Response(
            self.status_code,
            headers=self.headers,
            content=self.content,
            request=self.request.revive() if self.request is not None else None,
        )


def _portable_request(method: str, url: str) -> _PortableRequest:
    portable = object.__new__(_PortableRequest)
    portable.method, portable.url = method, url
    return portable


def _portable_response(
    status_code: int,
    headers: list[tuple[bytes, bytes]],
    content: bytes,
    request: tuple[str, str] | None,
) -> _PortableResponse:
    portable = object.__new__(_PortableResponse)
    portable.status_code, portable.headers, portable.content = status_code, headers, content
    portable.request = _portable_request(*request) if request is not None else None
    return portable


_MAX_PICKLED_DEPTH = 100


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts/lists more than ``limit`` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, tuple)):
            if depth > limit:
                return True
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
    return False


def _portable(value: Any) -> Any:
    if isinstance(value, httpx.Response):
        return _PortableResponse(value)
    if isinstance(value, httpx.Request):
        return _PortableRequest(value)
    if isinstance(value, (dict, list)) and _nested_deeper_than(value, _MAX_PICKLED_DEPTH):
        return None  # pickle recurses once a level: a hostile body could not travel
    return value


def _revive(value: Any) -> Any:
    if isinstance(value, (_PortableResponse, _PortableRequest)):
        return value.revive()
    return value


def _restore(cls: type[ChatarminOSError], args: tuple[Any, ...]) -> ChatarminOSError:
    """Rebuild an exception without calling its ``__init__`` (the state follows)."""
    return cls.__new__(cls, *args)
