"""The request loop of the async client: send, decode, map errors, retry, log.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_base_client.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

import httpx
import pydantic

from .._base import ClientConfig, retry_delay, should_retry
from .._concurrency import AsyncBackground, AsyncSleeper, AsyncWork, asleep
from .._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ChatarminOSError,
    ConfigurationError,
    InvalidInputError,
    error_class_for,
)
from .._logs import logger, setup_logging
from .._procedures import NO_INPUT, PROCEDURES
from .._response import decode_response
from .._urls import url_joiner
from .._validate import check_url_length
from .._wire import encode_request
from ._http import OWN_POOL_HEADERS, AsyncHTTPPool, BodyDecodingError

__all__ = ["AsyncBaseClient"]

_Self = TypeVar("_Self", bound="AsyncBaseClient")
_T = TypeVar("_T")

# Transport failures after which the request certainly never reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_MAX_DETAIL = 200


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "…"


class _Success(NamedTuple):
    output: Any
    response: httpx.Response


class _Failure:
    """How one attempt failed: the SDK error, its cause, and what decides a retry."""

    __slots__ = ("cause", "error", "response", "retryable", "was_sent")

    def __init__(
        self,
        error: ChatarminOSError,
        *,
        cause: BaseException | None,
        response: httpx.Response | None = None,
        was_sent: bool = True,
        retryable: bool = True,
    ) -> None:
        self.error = error
        self.cause = cause
        self.response = response
        self.was_sent = was_sent
        self.retryable = retryable


def _undecodable(response: httpx.Response, path: str) -> ChatarminOSError:
    encoding = response.headers.get("content-encoding", "?")
    message = (
        f"The answer from {path} (HTTP {response.status_code}) has a body that cannot be "
        f"decoded (content-encoding {encoding[:40]!r})."
    )
    if response.is_success:
        return APIResponseValidationError(message, path=path, response=response)
    cls: type[APIStatusError] = error_class_for(response.status_code, None)
    return cls(message, response=response, path=path, code=None)


class AsyncBaseClient:
    """Configuration, connection pool and the request loop; the public client derives from it.

    One client is meant to be shared: by every task of an event loop, or by every thread
    (the blocking client). It survives ``os.fork()`` and a change of event loop: see
    :mod:`chatarmin_os._async._http`.
    """

    _config: ClientConfig
    _pool: AsyncHTTPPool
    _owns_pool: bool
    _background: AsyncBackground
    _closed: bool
    _sleep: AsyncSleeper
    _headers: httpx.Headers
    _post_headers: httpx.Headers
    _extensions: dict[str, Any]
    _url: Callable[[str], httpx.URL]
    _base_url_text: str

    def _setup(
        self,
        config: ClientConfig,
        pool: AsyncHTTPPool,
        sleeper: AsyncSleeper | None,
        *,
        parent: AsyncBaseClient | None = None,
    ) -> None:
        """Configure; a ``with_options`` copy shares its ``parent``'s pool and background work."""
        setup_logging()
        self._config = config
        self._pool = pool
        self._owns_pool = parent is None
        self._closed = False
        if parent is None:
            self._background = AsyncBackground()
            self._closing_steps: list[AsyncWork] = []
        else:
            self._background = parent._background
            self._closing_steps = parent._closing_steps
        if sleeper is not None and not callable(sleeper):
            raise ConfigurationError(f"sleep must be callable, got {type(sleeper).__name__}")
        self._sleep = sleeper or asleep
        # Built once: every request of this client carries the same headers and timeout.
        headers = httpx.Headers(OWN_POOL_HEADERS if pool.owned else None)
        headers.update(config.headers())
        self._headers = headers
        self._post_headers = headers.copy()
        self._post_headers["Content-Type"] = "application/json"
        # Keyed by the id of self._headers / self._post_headers, which live as long as we do.
        self._merged: dict[int, tuple[list[tuple[bytes, bytes]], httpx.Headers]] = {}
        self._extensions = {"timeout": httpx.Timeout(config.timeout).as_dict()}
        self._url = url_joiner(config.base_url)
        self._base_url_text = str(config.base_url)

    @staticmethod
    def _make_pool(http_client: httpx.AsyncClient | None) -> AsyncHTTPPool:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ChatarminOSError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        return AsyncHTTPPool(http_client)

    def _own_pool(self, factory: Callable[[], httpx.AsyncClient]) -> None:
        """Send through httpx clients made by ``factory``, as our own pool (made on first use,
        made again after a fork or under another event loop, closed with this client).

        For in-process transports (the local ChatarminOS, test doubles); call it right after
        construction.
        """
        self._pool = AsyncHTTPPool(factory=factory)
        self._owns_pool = True

    @property
    def base_url(self) -> httpx.URL:
        """The URL procedure paths are joined onto (always ends in ``/``)."""
        return self._config.base_url

    @property
    def max_retries(self) -> int:
        """How many times a failed call is retried."""
        return self._config.max_retries

    @property
    def timeout(self) -> float | httpx.Timeout | None:
        """The timeout of every request."""
        return self._config.timeout

    @property
    def transformer(self) -> str:
        """``"json"`` or ``"superjson"``: how values are encoded on the wire."""
        return self._config.transformer

    @property
    def is_closed(self) -> bool:
        """Whether this client was closed (or the pool it sends through was)."""
        return self._closed or self._pool.is_closed

    def _on_close(self, step: AsyncWork) -> None:
        """Run ``step`` when the client (the one owning the pool) closes, before the pool.

        For what a client holds besides its pool (a usage buffer to flush, a cache's
        subscriptions); each step bounds its own waiting.
        """
        self._closing_steps.append(step)

    async def aclose(self) -> None:
        """Close this client; its pool too, unless it was passed in or belongs to a parent.

        Safe to call more than once. Calls made after it raise ``ChatarminOSError``.
        """
        if self._closed:
            return
        self._closed = True
        if not self._owns_pool:
            return
        for step in self._closing_steps:
            try:
                await step()
            except Exception:
                logger.exception("chatarmin_os: a closing step failed")
        await self._pool.aclose()

    async def __aenter__(self: _Self) -> _Self:
        if self._owns_pool:
            await self._background.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.aclose()
        finally:
            if self._owns_pool:
                await self._background.close()

    def __repr__(self) -> str:
        config = getattr(self, "_config", None)
        if config is None:  # construction failed half-way
            return f"<{type(self).__name__} (not configured)>"
        return (
            f"{type(self).__name__}(base_url={str(config.base_url)!r}, "
            f"transformer={config.transformer!r}, max_retries={config.max_retries})"
        )

    def _build_request(self, path: str, input: Any) -> httpx.Request:
        try:
            encoded = encode_request(
                PROCEDURES[path],
                path,
                input,
                transformer=self._config.transformer,
                has_input=path not in NO_INPUT,
            )
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("input", f"cannot be sent as JSON: {exc}") from None
        check_url_length(self._base_url_text + encoded.url)
        headers = self._headers if encoded.content is None else self._post_headers
        defaults = self._pool.callers_default_headers()
        if defaults is not None:
            headers = self._under_callers_defaults(headers, defaults)
        try:
            return httpx.Request(
                encoded.method,
                self._url(encoded.url),
                headers=headers,
                content=encoded.content,
                extensions=self._extensions,
            )
        except httpx.InvalidURL as exc:
            del headers  # holds the API key: keep it out of tracebacks with locals
            raise ChatarminOSError(f"Cannot build the URL of {path}: {exc}") from None

    def _under_callers_defaults(
        self, headers: httpx.Headers, defaults: list[tuple[bytes, bytes]]
    ) -> httpx.Headers:
        """``headers`` over your ``http_client``'s defaults, merged again only when they change."""
        cached = self._merged.get(id(headers))
        if cached is not None and cached[0] == defaults:
            return cached[1]
        merged = httpx.Headers(defaults)
        merged.update(headers)
        self._merged[id(headers)] = (defaults, merged)
        return merged

    async def _call(
        self,
        path: str,
        input: Any,
        parse: Callable[[Any], _T],
        *,
        idempotent: bool = False,
    ) -> _T:
        """Call a procedure; return its output passed through ``parse``, or raise its error.

        ``idempotent`` marks a mutation that may safely be sent twice (it carries an
        idempotency key); queries always may.
        """
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        request = self._build_request(path, input)
        is_query = PROCEDURES[path] == "query"
        retries_taken = 0
        while True:
            started = time.perf_counter()
            outcome = await self._attempt(request, path)
            if not isinstance(outcome, _Failure):
                self._log_attempt(
                    request, path, outcome.response.status_code, started, retries_taken
                )
                return _parse_output(parse, outcome.output, path, outcome.response)
            error, response, was_sent, retryable = (
                outcome.error,
                outcome.response,
                outcome.was_sent,
                outcome.retryable,
            )
            status = response.status_code if response is not None else None
            self._log_attempt(request, path, status, started, retries_taken, error)
            retry = (
                retryable
                and retries_taken < self._config.max_retries
                and should_retry(error, is_query=is_query, was_sent=was_sent, idempotent=idempotent)
            )
            if not retry:
                raise error from outcome.cause
            delay = retry_delay(retries_taken, response.headers if response is not None else None)
            logger.info(
                "Retrying %s %s in %.2f s (retry %d of %d)",
                request.method,
                path,
                delay,
                retries_taken + 1,
                self._config.max_retries,
            )
            await self._sleep(delay)
            retries_taken += 1

    async def _attempt(self, request: httpx.Request, path: str) -> _Success | _Failure:
        """Send once; the decoded output, or the SDK error this attempt ended in."""
        try:
            response = await self._pool.send(request)
        except httpx.TimeoutException as exc:
            return _Failure(
                APITimeoutError(request, f"Request to {path} timed out ({type(exc).__name__})."),
                cause=exc,
                was_sent=not isinstance(exc, _NEVER_SENT),
            )
        except httpx.TooManyRedirects as exc:
            return _Failure(
                APIConnectionError(f"Too many redirects calling {path}.", request=request),
                cause=exc,
                retryable=False,
            )
        except httpx.TransportError as exc:
            return _Failure(
                APIConnectionError(
                    f"Connection error calling {path}: {type(exc).__name__}: {_short(exc)}",
                    request=request,
                ),
                cause=exc,
                was_sent=not isinstance(exc, _NEVER_SENT),
            )
        except BodyDecodingError as exc:
            return _Failure(
                _undecodable(exc.response, path),
                cause=exc.__cause__,
                response=exc.response,
                retryable=False,
            )
        except ChatarminOSError:
            raise  # the pool is closed
        except Exception as exc:
            # Anything else from httpx or a caller's transport (e.g. a pool used under a
            # closed event loop) is still a failed call, never a bare exception.
            return _Failure(
                APIConnectionError(
                    f"Could not call {path}: {type(exc).__name__}: {_short(exc)}",
                    request=request,
                ),
                cause=exc,
            )
        try:
            output = decode_response(response, path=path, transformer=self._config.transformer)
        except ChatarminOSError as exc:
            return _Failure(exc, cause=exc.__cause__, response=response)  # keep decoding's cause
        return _Success(output, response)

    def _log_attempt(
        self,
        request: httpx.Request,
        path: str,
        status: int | None,
        started: float,
        retries_taken: int,
        error: Exception | None = None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        outcome = str(status) if status is not None else type(error).__name__
        logger.debug(
            "%s %s -> %s in %.1f ms (retry %d)",
            request.method,
            path,
            outcome,
            elapsed_ms,
            retries_taken,
        )


def _parse_output(
    parse: Callable[[Any], _T], output: Any, path: str, response: httpx.Response
) -> _T:
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
