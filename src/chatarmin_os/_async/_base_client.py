"""The request loop of the async client: send, decode, map errors, retry, log.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_base_client.py``.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pydantic

from .._base import ClientConfig, retry_delay, should_retry
from .._batching import BatchOptions, Call, plan_batches, refuses_batching
from .._concurrency import AsyncBackground, AsyncSleeper, AsyncWork, asleep
from .._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ChatarminOSError,
    ConfigurationError,
    InvalidInputError,
)
from .._logs import logger, setup_logging
from .._procedures import NO_INPUT, PROCEDURES
from .._response import decode_batch, decode_response, unusable_answer
from .._telemetry import current_tracer, span
from .._urls import url_joiner
from .._validate import check_url_length
from .._wire import encode_batch, encode_call, encode_input, encode_uri_component
from ._batcher import AsyncBatcher
from ._http import OWN_POOL_HEADERS, AsyncHTTPPool, BodyDecodingError, InProcessAnswer

__all__ = ["AsyncBaseClient"]

_Self = TypeVar("_Self", bound="AsyncBaseClient")
_T = TypeVar("_T")

# Transport failures after which the request certainly never reached the server.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_MAX_DETAIL = 200

_DEFAULT_BATCHING = BatchOptions()
_EMPTY_STREAM = httpx.ByteStream(b"")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "…"


class _Success:
    """One call's decoded output and the answer that carried it."""

    __slots__ = ("output", "response")

    def __init__(self, output: Any, response: httpx.Response) -> None:
        self.output = output
        self.response = response


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
    return unusable_answer(response, path, message)


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
    _batcher: AsyncBatcher | None
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
        batching: BatchOptions | None = None,
        parent: AsyncBaseClient | None = None,
    ) -> None:
        """Configure; a ``with_options`` copy shares its ``parent``'s pool and background work."""
        setup_logging()
        self._config = config
        self._batcher = AsyncBatcher(self, batching) if batching is not None else None
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
        self._in_process_headers = {
            "authorization": f"Bearer {config.api_key}",
            "content-type": "application/json",
        }
        self._base_url_text = str(config.base_url)

    @staticmethod
    def _make_pool(http_client: httpx.AsyncClient | None) -> AsyncHTTPPool:
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ChatarminOSError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        return AsyncHTTPPool(http_client)

    def _own_pool(
        self, factory: Callable[[], httpx.AsyncClient], *, answer: InProcessAnswer | None = None
    ) -> None:
        """Send through httpx clients made by ``factory``, as our own pool (made on first use,
        made again after a fork or under another event loop, closed with this client).

        For in-process transports (the local ChatarminOS, test doubles); call it right after
        construction. ``answer`` is an in-process server's direct entry point (see
        :class:`~chatarmin_os._async._http.InProcessAnswer`), used instead of httpx.
        """
        self._pool = AsyncHTTPPool(factory=factory, answer=answer)
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
    def batching(self) -> BatchOptions | None:
        """How concurrent calls are batched, or ``None`` when each goes on its own."""
        return self._batcher.options if self._batcher is not None else None

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

    def _prepare(self, path: str, input: Any, *, idempotent: bool = False) -> Call:
        """Encode one call (bad input is refused here, before anything is sent)."""
        kind = PROCEDURES[path]
        value = quoted = None
        if path not in NO_INPUT:
            try:
                value = encode_input(input, transformer=self._config.transformer)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError("input", f"cannot be sent as JSON: {exc}") from None
            if kind == "query":
                quoted = encode_uri_component(value)
                url_length = len(self._base_url_text) + len(path) + len("?input=") + len(quoted)
                check_url_length(url_length)
        return Call(path, kind, value, quoted, idempotent=idempotent)

    def _encode(self, calls: list[Call]) -> tuple[str, str, bytes | None]:
        """Method, target (relative to the base URL) and body of one call, or of a batch."""
        first = calls[0]
        if len(calls) > 1:
            encoded = encode_batch(
                first.kind, [call.path for call in calls], [call.value for call in calls]
            )
        else:
            transformer = self._config.transformer
            encoded = encode_call(
                first.kind, first.path, first.value, first.quoted, transformer=transformer
            )
        return encoded.method, encoded.url, encoded.content

    def _request_for(self, calls: list[Call]) -> httpx.Request:
        """The HTTP request of one call, or of a tRPC batch of calls of one kind."""
        method, target, content = self._encode(calls)
        headers = self._headers if content is None else self._post_headers
        defaults = self._pool.callers_default_headers()
        if defaults is not None:
            headers = self._under_callers_defaults(headers, defaults)
        try:
            return httpx.Request(
                method,
                self._url(target),
                headers=headers,
                content=content,
                extensions=self._extensions,
            )
        except httpx.InvalidURL as exc:
            del headers  # holds the API key: keep it out of tracebacks with locals
            raise ChatarminOSError(f"Cannot build the URL of {calls[0].path}: {exc}") from None

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
        idempotency key); queries always may. With batching on, the call may travel in a
        batch with others made at the same time; its result and error are its own.
        """
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        call = self._prepare(path, input, idempotent=idempotent)
        tracer = current_tracer()
        if tracer is None:
            return await self._complete(call, parse)
        with span(tracer, path, call.kind, self._config.base_url.host) as current:
            try:
                return await self._complete(call, parse)
            finally:
                if call.finished:
                    status = call.response.status_code if call.response is not None else None
                    status = getattr(call.error, "status_code", status)
                    if status is not None:
                        current.set_attribute("http.response.status_code", status)
                    current.set_attribute("chatarmin_os.retries", call.retries)
                    current.set_attribute("chatarmin_os.batch_size", call.batch_size)

    async def _complete(self, call: Call, parse: Callable[[Any], _T]) -> _T:
        """Send ``call`` (alone or batched), then parse its output or raise its error."""
        batcher = self._batcher
        if batcher is None or self._pool.batching_refused:
            await self._send([call])
            if call.error is not None:
                raise call.error from call.cause
        else:
            call = await batcher.submit(call)
            if call.error is not None:  # the call may be shared: raise a copy of its own
                raise copy.copy(call.error) from call.cause
        assert call.response is not None
        return _parse_output(parse, call.output, call.path, call.response)

    async def _call_many(
        self,
        path: str,
        inputs: Sequence[Any],
        parse: Callable[[Any], _T],
        *,
        idempotent: bool = False,
        max_retries: int | None = None,
    ) -> list[_T | ChatarminOSError]:
        """Call one procedure with many inputs, in tRPC batches; each call's result or error.

        Every input is checked before anything is sent. Batches follow the client's
        ``BatchOptions`` (the defaults when batching is off) and are sent one after the
        other; errors are returned in place, not raised. ``max_retries`` overrides the
        client's for these calls.
        """
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        calls = [self._prepare(path, input, idempotent=idempotent) for input in inputs]
        options = self._batcher.options if self._batcher is not None else _DEFAULT_BATCHING
        for batch in plan_batches(calls, options, len(self._base_url_text)):
            await self._send(batch, max_retries=max_retries)
        results: list[_T | ChatarminOSError] = []
        for call in calls:
            if call.error is not None:
                results.append(call.error)
                continue
            assert call.response is not None
            try:
                results.append(_parse_output(parse, call.output, path, call.response))
            except ChatarminOSError as exc:
                results.append(exc)
        return results

    async def _send(self, calls: list[Call], *, max_retries: int | None = None) -> None:
        """Send calls of one kind (one request: a call, or a batch) until each has an outcome.

        Retries follow the client's policy call by call: a retried batch carries only the
        calls that may be sent again; the others keep their error. A server that refuses
        batches gets every call on its own, from now on.
        """
        budget = self._config.max_retries if max_retries is None else max_retries
        pending = calls
        retries_taken = 0
        while True:
            if len(pending) > 1 and self._pool.batching_refused:
                for call in pending:
                    await self._send([call], max_retries=max_retries)
                return
            label = pending[0].path if len(pending) == 1 else f"batch of {len(pending)}"
            started = time.perf_counter()
            if self._pool.answer is not None:
                method, outcomes = self._answer_in_process(pending)
            else:
                request = self._request_for(pending)
                method = request.method
                outcomes = await self._attempt(request, pending)
            if isinstance(outcomes, _Failure):
                if len(pending) > 1 and refuses_batching(outcomes.error):
                    self._pool.refuse_batching(str(self._config.base_url))
                    continue  # nothing was run: send them one by one
                outcomes = [outcomes] * len(pending)
            first_failure = next((o for o in outcomes if isinstance(o, _Failure)), None)
            answer = (first_failure or outcomes[0]).response
            self._log_attempt(
                method,
                label,
                answer.status_code if answer is not None else None,
                started,
                retries_taken,
                first_failure.error if first_failure is not None else None,
            )
            again: list[Call] = []
            for call, outcome in zip(pending, outcomes, strict=True):
                call.retries, call.batch_size = retries_taken, len(pending)
                if isinstance(outcome, _Success):
                    call.succeed(outcome.output, outcome.response)
                elif (
                    outcome.retryable
                    and retries_taken < budget
                    and should_retry(
                        outcome.error,
                        is_query=call.kind == "query",
                        was_sent=outcome.was_sent,
                        idempotent=call.idempotent,
                    )
                ):
                    again.append(call)
                else:
                    error = outcome.error if len(pending) == 1 else copy.copy(outcome.error)
                    call.fail(error, outcome.cause)
            if not again:
                return
            assert first_failure is not None
            response = first_failure.response
            delay = retry_delay(retries_taken, response.headers if response is not None else None)
            logger.info(
                "Retrying %s %s in %.2f s (retry %d of %d)",
                method,
                label,
                delay,
                retries_taken + 1,
                budget,
            )
            await self._sleep(delay)
            retries_taken += 1
            pending = again

    async def _attempt(
        self, request: httpx.Request, calls: list[Call]
    ) -> _Failure | list[_Success | _Failure]:
        """Send once; each call's output or error, or the failure of the whole request."""
        path = calls[0].path if len(calls) == 1 else ",".join(call.path for call in calls)
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
        return self._decode(response, calls, path)

    def _answer_in_process(
        self, calls: list[Call]
    ) -> tuple[str, _Failure | list[_Success | _Failure]]:
        """Have an in-process server answer the encoded call(s) directly: no httpx request.

        The local ChatarminOS takes the same method, target and body the wire would carry
        and runs the same tRPC handling; only the HTTP objects in between are skipped.
        """
        method, target, content = self._encode(calls)
        answer = self._pool.answer
        assert answer is not None
        path = calls[0].path if len(calls) == 1 else ",".join(call.path for call in calls)
        try:
            raw = answer(method, target, self._in_process_headers, content)
        except ChatarminOSError:
            raise
        except Exception as exc:
            request = httpx.Request(method, self._url(target))
            return method, _Failure(
                APIConnectionError(
                    f"Could not call {path}: {type(exc).__name__}: {_short(exc)}",
                    request=request,
                ),
                cause=exc,
            )
        response = httpx.Response(raw.status, headers=raw.headers, stream=_EMPTY_STREAM)
        response._content = raw.body  # complete already: nothing for httpx to read
        return method, self._decode(response, calls, path)

    def _decode(
        self, response: httpx.Response, calls: list[Call], path: str
    ) -> _Failure | list[_Success | _Failure]:
        transformer = self._config.transformer
        if len(calls) == 1:
            try:
                output = decode_response(response, path=path, transformer=transformer)
            except ChatarminOSError as exc:  # keep decoding's cause
                return _Failure(exc, cause=exc.__cause__, response=response)
            return [_Success(output, response)]
        try:
            decoded = decode_batch(
                response, paths=[call.path for call in calls], transformer=transformer
            )
        except ChatarminOSError as exc:  # an answer for the whole batch
            return _Failure(exc, cause=exc.__cause__, response=response)
        return [
            _Failure(item, cause=item.__cause__, response=response)
            if isinstance(item, ChatarminOSError)
            else _Success(item, response)
            for item in decoded
        ]

    def _log_attempt(
        self,
        method: str,
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
            method,
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
