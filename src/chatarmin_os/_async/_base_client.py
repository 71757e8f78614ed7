"""The request loop of the async client: send, decode, map errors, retry, log.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_base_client.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pydantic

from .._base import ClientConfig, retry_delay, should_retry
from .._concurrency import AsyncSleeper, asleep
from .._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ChatarminOSError,
    InvalidInputError,
)
from .._logs import logger, setup_logging
from .._procedures import NO_INPUT, PROCEDURES
from .._response import decode_response
from .._wire import encode_request

__all__ = ["AsyncBaseClient"]

_Self = TypeVar("_Self", bound="AsyncBaseClient")
_T = TypeVar("_T")

# Transport failures after which the request certainly never reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class AsyncBaseClient:
    """Configuration, connection pool and the request loop; the public client derives from it."""

    _config: ClientConfig
    _client: httpx.AsyncClient
    _owns_client: bool
    _sleep: AsyncSleeper

    def _setup(
        self,
        config: ClientConfig,
        http_client: httpx.AsyncClient | None,
        sleeper: AsyncSleeper | None,
        owns_client: bool | None = None,
    ) -> None:
        setup_logging()
        self._config = config
        if http_client is None:
            self._client = httpx.AsyncClient(timeout=config.timeout)
            self._owns_client = True
        else:
            if not isinstance(http_client, httpx.AsyncClient):
                raise ChatarminOSError(
                    f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
                )
            self._client = http_client
            self._owns_client = False
        if owns_client is not None:
            self._owns_client = owns_client
        self._sleep = sleeper or asleep

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
        """Whether the connection pool has been closed."""
        return self._client.is_closed

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in or belongs to a parent client."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={str(self._config.base_url)!r}, "
            f"transformer={self._config.transformer!r}, max_retries={self._config.max_retries})"
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
        headers = self._config.headers()
        if encoded.content is not None:
            headers["Content-Type"] = "application/json"
        return self._client.build_request(
            encoded.method,
            str(self._config.base_url) + encoded.url,
            content=encoded.content,
            headers=headers,
            timeout=self._config.timeout,
        )

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
        request = self._build_request(path, input)
        is_query = PROCEDURES[path] == "query"
        retries_taken = 0
        while True:
            started = time.perf_counter()
            response: httpx.Response | None = None
            was_sent = True
            cause: BaseException | None = None
            try:
                response = await self._client.send(request)
            except httpx.TimeoutException as exc:
                was_sent = not isinstance(exc, _NEVER_SENT)
                error: ChatarminOSError = APITimeoutError(
                    request, f"Request to {path} timed out ({type(exc).__name__})."
                )
                cause = exc
            except httpx.TransportError as exc:
                was_sent = not isinstance(exc, _NEVER_SENT)
                error = APIConnectionError(
                    f"Connection error calling {path}: {type(exc).__name__}: {exc}",
                    request=request,
                )
                cause = exc
            else:
                try:
                    output = decode_response(
                        response, path=path, transformer=self._config.transformer
                    )
                except ChatarminOSError as exc:
                    error = exc
                    cause = exc.__cause__  # keep what decoding chained
                else:
                    self._log_attempt(request, path, response.status_code, started, retries_taken)
                    return _parse_output(parse, output, path, response)
            status = response.status_code if response is not None else None
            self._log_attempt(request, path, status, started, retries_taken, error)
            retry = retries_taken < self._config.max_retries and should_retry(
                error, is_query=is_query, was_sent=was_sent, idempotent=idempotent
            )
            if not retry:
                raise error from cause
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
