"""``ClientCore``: configuration and the request loop's steps that do not wait.

The twins' ``AsyncBaseClient`` / ``BaseClient`` derive from it and add the steps that wait
(``_call``, ``_send``, ``_attempt``, closing). One place builds a request
(:meth:`ClientCore._request_for`), one decodes an answer (:meth:`ClientCore._decode`), and one
maps a send that raised (:func:`~chatarmin_os._client.outcomes.send_failure`), whatever the
transport: an HTTP pool or an in-process server.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from .._base import ClientConfig, retry_delay, should_retry
from .._batching import BatchOptions, Call, plan_batches, refuses_batching
from .._exceptions import ChatarminOSError, ConfigurationError, InvalidInputError, request_id_of
from .._logs import logger, setup_logging
from .._procedures import NO_INPUT, PROCEDURES
from .._response import decode_batch, decode_response
from .._types import HTTPResponse
from .._urls import URLJoiner
from .._validate import check_url_length
from .._wire import encode_batch, encode_call, encode_input, encode_uri_component
from . import library
from .options import call_options
from .outcomes import Failure, Success, parse_output
from .pool import InProcessAnswer, PoolCore
from .raw import record, with_request_id
from .request import WireRequest

__all__ = ["OWN_POOL_HEADERS", "ClientCore", "ClientIO", "paths_of"]

_T = TypeVar("_T")

_DEFAULT_BATCHING = BatchOptions()


class _LastStep:
    """A closing step that runs after every other (see ``ClientCore._on_close``)."""

    __slots__ = ("step",)

    def __init__(self, step: Callable[[], Any]) -> None:
        self.step = step

    def __call__(self) -> Any:
        return self.step()


def paths_of(calls: list[Call]) -> str:
    """The procedure path of one call, or the comma-joined paths of a batch (for messages)."""
    return calls[0].path if len(calls) == 1 else ",".join(call.path for call in calls)


def _accept_encoding() -> str:
    try:  # what httpx itself asks for: gzip and deflate, br / zstd when their decoders exist
        from httpx._decoders import SUPPORTED_DECODERS

        return ", ".join(key for key in SUPPORTED_DECODERS if key != "identity")
    except ImportError:  # pragma: no cover
        return "gzip, deflate"


OWN_POOL_HEADERS: dict[str, str] = {
    "Accept-Encoding": _accept_encoding(),
    "Connection": "keep-alive",
}
"""The defaults our own pool sends under the client's headers, as an ``httpx.Client`` would."""


@dataclass(frozen=True)
class ClientIO:
    """A twin's I/O pieces, named once on its class (``_io``) so the core never imports them.

    ``http_pool(http_client, factory=...)`` and ``in_process_pool(answer)`` make pools;
    ``batcher(options, send, background, base_url_length)`` a batcher; ``background()`` the
    place background work runs; ``sleep`` waits between retries; ``http_client`` is the
    httpx client class a caller may pass (or httpx2's of the same name); ``cache_group(options, background)`` makes the
    entitlement cache (imported only when used) and returns it with its closing step.
    """

    http_pool: Callable[..., Any]
    in_process_pool: Callable[[InProcessAnswer], Any]
    batcher: Callable[..., Any]
    background: Callable[[], Any]
    sleep: Callable[[float], Any]
    http_client: type[Any]
    cache_group: Callable[[Any, Any], tuple[Any, Callable[[], Any]]]


class ClientCore:
    """Configuration, pool and the non-waiting steps of the request loop.

    One client is meant to be shared: by every task of an event loop, or by every thread
    (the blocking client). It survives ``os.fork()`` and a change of event loop (see the
    twins' ``_http`` modules).
    """

    _io: ClientIO
    _config: ClientConfig
    _pool: Any
    _owns_pool: bool
    _background: Any
    _batcher: Any
    _closing_steps: list[Any]
    _closed: bool
    _sleep: Any
    _headers: httpx.Headers
    _post_headers: httpx.Headers
    _extensions: dict[str, Any]
    _url: URLJoiner
    _base_url_text: str
    _send: Callable[..., Any]  # the twin's request loop: sends calls until each has an outcome

    def _setup(
        self,
        config: ClientConfig,
        pool: PoolCore,
        sleeper: Any,
        *,
        batching: BatchOptions | None = None,
        parent: ClientCore | None = None,
    ) -> None:
        """Configure; a ``with_options`` copy shares its ``parent``'s pool and background work."""
        setup_logging()
        io = self._io
        self._config = config
        self._pool = pool
        self._owns_pool = parent is None
        self._closed = False
        if parent is None:
            self._background = io.background()
            self._closing_steps = []
        else:
            self._background = parent._background
            self._closing_steps = parent._closing_steps
        if sleeper is not None and not callable(sleeper):
            raise ConfigurationError(f"sleep must be callable, got {type(sleeper).__name__}")
        self._sleep = sleeper or io.sleep
        self._base_url_text = str(config.base_url)
        self._batcher = (
            io.batcher(batching, self._send, self._background, len(self._base_url_text))
            if batching is not None
            else None
        )
        # Built once: every request of this client carries the same headers and timeout.
        headers = httpx.Headers(OWN_POOL_HEADERS if pool.owned else None)
        headers.update(config.headers())
        self._headers = headers
        self._post_headers = headers.copy()
        self._post_headers["Content-Type"] = "application/json"
        # Keyed by the id of self._headers / self._post_headers, which live as long as we do.
        self._merged: dict[int, tuple[list[tuple[bytes, bytes]], httpx.Headers]] = {}
        self._extensions = {"timeout": httpx.Timeout(config.timeout).as_dict()}
        self._url = URLJoiner(config.base_url)

    def _make_pool(self, http_client: Any) -> Any:
        """The HTTP pool: over your ``http_client``, or ours (made on first use)."""
        name = self._io.http_client.__name__
        if http_client is not None and not library.accepts(http_client, name):
            raise ChatarminOSError(
                f"http_client must be an httpx.{name} or an httpx2.{name}, "
                f"got {type(http_client).__name__}"
            )
        return self._io.http_pool(http_client)

    def _own_pool(self, factory: Callable[[], Any]) -> None:
        """Send through httpx clients made by ``factory``, as our own pool (made on first use,
        made again after a fork or under another event loop, closed with this client).

        For in-process transports of httpx or httpx2 (test doubles, fault injection); call it
        right after construction.
        """
        self._pool = self._io.http_pool(None, factory=factory)
        self._owns_pool = True

    def _answer_in_process(self, answer: InProcessAnswer) -> None:
        """Send to an in-process server's direct entry point (the local ChatarminOS): a
        transport like HTTP for the request loop, without sockets or httpx requests."""
        self._pool = self._io.in_process_pool(answer)
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
        options: BatchOptions | None = self._batcher.options if self._batcher is not None else None
        return options

    @property
    def transformer(self) -> str:
        """``"json"`` or ``"superjson"``: how values are encoded on the wire."""
        return self._config.transformer

    @property
    def is_closed(self) -> bool:
        """Whether this client was closed (or the pool it sends through was)."""
        return self._closed or bool(self._pool.is_closed)

    def _on_close(self, step: Callable[[], Any], *, last: bool = False) -> None:
        """Run ``step`` when the client (the one owning the pool) closes, before the pool.

        For what a client holds besides its pool (a usage buffer to flush, a ledger to
        drain, a cache's connections); each step bounds its own waiting. Steps run in the
        order given, those marked ``last`` (the cache: what the others still write goes
        through its Redis) after all the others.
        """
        steps = self._closing_steps
        if last:
            steps.append(_LastStep(step))
            return
        at = next((i for i, done in enumerate(steps) if isinstance(done, _LastStep)), len(steps))
        steps.insert(at, step)

    def __repr__(self) -> str:
        config = getattr(self, "_config", None)
        if config is None:  # construction failed half-way
            return f"<{type(self).__name__} (not configured)>"
        return (
            f"{type(self).__name__}(base_url={str(config.base_url)!r}, "
            f"transformer={config.transformer!r}, max_retries={config.max_retries})"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")

    def _prepare(
        self,
        path: str,
        input: Any,
        *,
        idempotent: bool = False,
        options: Mapping[str, Any] | None = None,
    ) -> Call:
        """Encode one call (bad input and bad per-call ``options`` are refused here, before
        anything is sent)."""
        checked = call_options(options)
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
        return Call(path, kind, value, quoted, idempotent=idempotent, options=checked)

    def _request_for(self, calls: list[Call]) -> WireRequest:
        """The request of one call, or of a tRPC batch of calls of one kind: the one place a
        request is built, whatever transport sends it."""
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
        content = encoded.content
        headers = self._headers if content is None else self._post_headers
        defaults = self._pool.callers_default_headers()
        if defaults is not None:
            headers = self._under_callers_defaults(headers, defaults)
        target, extensions = encoded.url, self._extensions
        options = first.options  # a call with options goes alone (or with its twins)
        if options is not None:
            headers, target = options.apply(headers, target)
            extensions = options.extensions or extensions
        return WireRequest(encoded.method, target, self._url, headers, content, extensions)

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

    def _decode(
        self, response: HTTPResponse, calls: list[Call]
    ) -> Failure | list[Success | Failure]:
        """The one place an answer is decoded: each call's output or error, or the failure
        of the whole request."""
        path = paths_of(calls)
        transformer = self._config.transformer
        if len(calls) == 1:
            try:
                output = decode_response(response, path=path, transformer=transformer)
            except ChatarminOSError as exc:  # keep decoding's cause
                return Failure(exc, cause=exc.__cause__, response=response)
            return [Success(output, response)]
        try:
            decoded = decode_batch(
                response, paths=[call.path for call in calls], transformer=transformer
            )
        except ChatarminOSError as exc:  # an answer for the whole batch
            return Failure(exc, cause=exc.__cause__, response=response)
        return [
            Failure(item, cause=item.__cause__, response=response)
            if isinstance(item, ChatarminOSError)
            else Success(item, response)
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
        answer: HTTPResponse | None = None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        outcome = str(status) if status is not None else type(error).__name__
        request_id = request_id_of(answer)
        if request_id is not None:  # the server's name of the request: quote it to support
            outcome = f"{outcome} [{request_id}]"
        logger.debug(
            "%s %s -> %s in %.1f ms (retry %d)",
            method,
            path,
            outcome,
            elapsed_ms,
            retries_taken,
        )

    def _batch_refused(
        self, calls: list[Call], outcomes: Failure | list[Success | Failure]
    ) -> bool:
        """Whether a batch was answered "Batching is not enabled" (nothing was run: the
        calls go one by one, from now on)."""
        if len(calls) > 1 and isinstance(outcomes, Failure) and refuses_batching(outcomes.error):
            self._pool.refuse_batching(self._base_url_text)
            return True
        return False

    def _settle(
        self,
        request: WireRequest,
        pending: list[Call],
        outcomes: Failure | list[Success | Failure],
        started: float,
        retries_taken: int,
        budget: int,
    ) -> tuple[list[Call], float]:
        """Give each call its outcome, or keep it for another attempt: the calls to send
        again (a retried batch carries only those that may be sent twice) and the wait."""
        if isinstance(outcomes, Failure):
            outcomes = [outcomes] * len(pending)
        first_failure = next((o for o in outcomes if isinstance(o, Failure)), None)
        answer = (first_failure or outcomes[0]).response
        label = pending[0].path if len(pending) == 1 else f"batch of {len(pending)}"
        self._log_attempt(
            request.method,
            label,
            answer.status_code if answer is not None else None,
            started,
            retries_taken,
            first_failure.error if first_failure is not None else None,
            answer,
        )
        elapsed = time.perf_counter() - started
        again: list[Call] = []
        for call, outcome in zip(pending, outcomes, strict=True):
            call.retries, call.batch_size = retries_taken, len(pending)
            call.request, call.elapsed = request, elapsed
            if isinstance(outcome, Success):
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
            return again, 0.0
        assert first_failure is not None
        response = first_failure.response
        delay = retry_delay(retries_taken, response.headers if response is not None else None)
        logger.info(
            "Retrying %s %s in %.2f s (retry %d of %d)",
            request.method,
            label,
            delay,
            retries_taken + 1,
            budget,
        )
        return again, delay

    def _batches(self, calls: list[Call]) -> list[list[Call]]:
        """``calls`` (of one procedure) in batches, as the client's ``BatchOptions`` (or the
        defaults) allow."""
        options = self._batcher.options if self._batcher is not None else _DEFAULT_BATCHING
        return plan_batches(calls, options, len(self._base_url_text))

    @staticmethod
    def _outcome(call: Call, parse: Callable[[Any], _T], *, shared: bool = False) -> _T:
        """A sent call's parsed output with its request id, or its error raised (a copy when
        the call may be shared by several callers); noted for a raw call in progress."""
        record(call)
        if call.error is not None:
            raise (copy.copy(call.error) if shared else call.error) from call.cause
        response = call.response
        assert response is not None
        return with_request_id(parse_output(parse, call.output, call.path, response), response)

    @staticmethod
    def _results(calls: list[Call], parse: Callable[[Any], _T]) -> list[_T | ChatarminOSError]:
        """Each sent call's parsed output (with its request id), or its error in place."""
        results: list[_T | ChatarminOSError] = []
        for call in calls:
            record(call)
            if call.error is not None:
                results.append(call.error)
                continue
            response = call.response
            assert response is not None
            try:
                parsed = parse_output(parse, call.output, call.path, response)
                results.append(with_request_id(parsed, response))
            except ChatarminOSError as exc:
                results.append(exc)
        return results

    @staticmethod
    def _record(current: Any, call: Call) -> None:
        """Put a finished call's status, retries and batch size on its tracing span."""
        if call.finished:
            status = call.response.status_code if call.response is not None else None
            status = getattr(call.error, "status_code", status)
            if status is not None:
                current.set_attribute("http.response.status_code", status)
            current.set_attribute("chatarmin_os.retries", call.retries)
            current.set_attribute("chatarmin_os.batch_size", call.batch_size)
