"""tRPC v11 over HTTP, server side: turn an HTTP request into engine calls and back.

:class:`TRPCHandler` is the one place that does it, shared by the ASGI app (``chatarmin-os
serve``) and the in-process httpx transports, so every way of reaching the local ChatarminOS
speaks the same wire as ``@trpc/server`` (see ``docs/protocol-notes.md``):

* ``GET {prefix}/{path}?input=…`` for queries, ``POST`` with ``Content-Type:
  application/json`` for mutations; the other method answers ``METHOD_NOT_SUPPORTED`` (405);
  a request other than GET without a JSON content type answers ``UNSUPPORTED_MEDIA_TYPE``
  (415); ``HEAD`` answers 204;
* the procedure path is percent-decoded after the prefix is matched on the raw path, so
  ``/api/v1%2ftiers.list`` is not a procedure (404) and a malformed escape is a 400;
* ``?batch=1`` with ``{path0},{path1}`` and an input object keyed ``"0"``, ``"1"``, …; the
  answer is an array, HTTP 200 when all succeeded, 207 when mixed, else the shared status.
  At most ``max_batch`` calls (tRPC's ``maxBatchSize``; over it: 400 ``Batch call exceeds
  maximum size``, nothing runs); ``batching=False`` refuses every batch (tRPC's
  ``allowBatching: false``: 400 ``Batching is not enabled on the server``);
* a body over ``max_body`` bytes answers ``PAYLOAD_TOO_LARGE`` (413), nothing runs; a body is
  read as UTF-8 as Node reads it (invalid bytes become U+FFFD, a leading BOM is skipped), so
  UTF-16 or UTF-32 is not JSON (400);
* every answer carries an ``x-request-id`` (``req_`` + 24 hex digits), one per HTTP request;
* errors as ``{"error": {"message", "code", "data": {"code", "httpStatus", "path"}}}`` —
  whatever the input (malformed or deeply nested JSON, invalid Unicode), never a bare 500;
* the transformer: ``"auto"`` (the default) answers in superjson when the request's input is
  superjson-shaped (``{"json": …, "meta"?: …}``), in plain JSON otherwise; ``"json"`` and
  ``"superjson"`` force one mode, as a real server is set up with exactly one.

The options (``prefix``, ``transformer``, ``max_batch``, ``batching``, ``max_body``) are one
:class:`~chatarmin_os.local.ServerOptions`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from .._wire import (
    TRPC_CODE_NUMBER,
    TRPC_CODE_STATUS,
    dumps_plain,
    is_superjson_shaped,
    superjson_deserialize,
    superjson_serialize,
)
from ._errors import ProcedureError
from ._options import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY,
    DEFAULT_PREFIX,
    ServerOptions,
    ServerTransformer,
)
from ._registry import REGISTRY, Procedure
from ._request import Refused, input_is_superjson, read_inputs, read_target, refuse, shown
from ._request_id import REQUEST_ID_HEADER, new_request_id
from .engine import LocalEngine

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PREFIX",
    "REQUEST_ID_HEADER",
    "HTTPResponse",
    "ServerOptions",
    "ServerTransformer",
    "TRPCHandler",
    "error_body",
    "handle",
    "new_request_id",
    "request_summary",
]

logger = logging.getLogger("chatarmin_os.local")


@dataclass
class HTTPResponse:
    """What to answer: status, headers (lower-case names) and a JSON body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        """The answer's ``x-request-id`` (``""`` when it has none)."""
        return self.headers.get(REQUEST_ID_HEADER, "")


def answer_headers(request_id: str, body: bytes) -> dict[str, str]:
    """The headers of an answer: its request id, and its JSON type when it has a body."""
    if not body:
        return {REQUEST_ID_HEADER: request_id}
    return {"content-type": "application/json", REQUEST_ID_HEADER: request_id}


def error_body(code: str, message: str, path: str | None = None) -> bytes:
    """A plain-JSON tRPC error envelope, encoded (for answers given outside the handler)."""
    return _encode({"error": _error_shape(code, message, path)})


def _error_shape(code: str, message: str, path: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "httpStatus": TRPC_CODE_STATUS.get(code, 500)}
    if path is not None:
        data["path"] = path
    return {"message": message, "code": TRPC_CODE_NUMBER.get(code, -32603), "data": data}


def _encode(payload: Any) -> bytes:
    """Compact JSON as ``JSON.stringify`` writes it; datetimes as ISO-8601 UTC strings.

    A lone surrogate (which no stored value holds, but an echoed input might) is written as
    a ``\\udXXX`` escape, as ``JSON.stringify`` does, so the answer is always valid UTF-8.
    """
    return dumps_plain(payload).encode("utf-8", "backslashreplace")


def request_summary(
    prefix: str, method: str, raw_path: str, query_string: str, body: bytes
) -> tuple[list[str], bool] | None:
    """(procedure paths, superjson-shaped input) of a request, read as the handler reads it;
    ``None`` when the handler refuses it before reading any path (the fault injector uses it).
    """
    try:
        target = read_target(prefix, raw_path, query_string)
    except Refused:
        return None
    return target.paths, input_is_superjson(read_inputs(method.upper(), target, body))


class TRPCHandler:
    """A ``@trpc/server`` v11 router over ``engine``, set up by ``options``.

    ``options`` (a :class:`ServerOptions`, default ``ServerOptions()``) may be adjusted with
    keywords of the same names: ``TRPCHandler(engine, max_batch=10)``. Set :attr:`stopping`
    to make the calls left in a running batch answer ``SERVICE_UNAVAILABLE`` (a server
    shutting down).
    """

    def __init__(
        self, engine: LocalEngine, options: ServerOptions | None = None, **changes: Any
    ) -> None:
        """Serve ``engine``'s procedures with ``options`` (and ``changes`` to them)."""
        self.engine = engine
        """The engine that answers."""
        self.options = (options or ServerOptions()).replace(**changes)
        """How it speaks tRPC (:class:`ServerOptions`)."""
        self.stopping = False
        """Set when the server shuts down: the rest of a running batch is not run."""

    @property
    def prefix(self) -> str:
        """The path the procedures are mounted at (no trailing slash)."""
        return self.options.prefix

    @property
    def max_body(self) -> int:
        """The largest request body, in bytes."""
        return self.options.max_body

    def __repr__(self) -> str:
        return f"TRPCHandler({self.options!r})"

    # -- one request ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        request_id: str | None = None,
    ) -> HTTPResponse:
        """Answer one HTTP request as ``@trpc/server`` would.

        ``raw_path`` is the path as sent (still percent-encoded, no query string),
        ``headers`` have lower-case names (only ``authorization`` and ``content-type`` are
        read). The answer carries ``request_id`` (a new one when omitted) in its
        ``x-request-id`` header.
        """
        rid = request_id or new_request_id()
        try:
            answer = self._handle(method.upper(), raw_path, query_string, headers, body)
        except Refused as refused:
            shape = _error_shape(refused.code, refused.message, refused.path)
            superjson = self.options.transformer == "superjson"
            answer = HTTPResponse(
                TRPC_CODE_STATUS[refused.code],
                _encode({"error": {"json": shape} if superjson else shape}),
            )
        answer.headers = answer_headers(rid, answer.body)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %d [%s]", method, shown(raw_path), answer.status, rid)
        return answer

    def _handle(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> HTTPResponse:
        options = self.options
        if method == "HEAD":
            prefix = options.prefix
            if raw_path != prefix and not raw_path.startswith(prefix + "/"):
                refuse("NOT_FOUND", f'No procedure found on path "{shown(raw_path)}"')
            return HTTPResponse(204, b"")
        target = read_target(options.prefix, raw_path, query_string)
        if method != "GET":
            content_type = headers.get("content-type")
            if content_type is None:
                refuse("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                # Verbatim @trpc/server, unbalanced quote included.
                refuse("UNSUPPORTED_MEDIA_TYPE", f'Unsupported content-type "{content_type}')
        paths, batch = target.paths, target.batch
        # In @trpc/server's order: the batch size, mixed kinds, then batching allowed at all.
        if batch and len(paths) > options.max_batch:
            refuse("BAD_REQUEST", "Batch call exceeds maximum size")
        procedures = [REGISTRY.get(p) for p in paths]
        if batch:
            kinds = list(dict.fromkeys(p.kind for p in procedures if p is not None))
            if len(kinds) > 1:
                refuse("BAD_REQUEST", "Cannot mix procedure types in call: " + ", ".join(kinds))
            if not options.batching:
                refuse("BAD_REQUEST", "Batching is not enabled on the server")
        if len(body) > options.max_body:
            limit = options.max_body
            refuse("PAYLOAD_TOO_LARGE", f"Request body exceeds the limit of {limit} bytes")

        # The input: given or not, and parsed. A failure here is the error of every call
        # that reads its input (after its path, method and API key are checked), as in tRPC.
        inputs = read_inputs(method, target, body)
        if options.transformer == "auto":
            superjson = input_is_superjson(inputs)
        else:
            superjson = options.transformer == "superjson"
        auth = headers.get("authorization", "")
        api_key = auth[7:].strip() if auth[:7].lower() == "bearer " else None

        results: list[tuple[int, Any]] = []
        # A batch of mutations runs in one transaction, each call in a savepoint: one commit.
        group = self.engine.batch() if batch and method == "POST" else nullcontext()
        with group:
            for index, (proc_path, procedure) in enumerate(zip(paths, procedures, strict=True)):
                if index > 0 and self.stopping:
                    result = _call_error(
                        "SERVICE_UNAVAILABLE", "The server is shutting down", proc_path, superjson
                    )
                else:
                    has, value = inputs.calls[index]
                    result = self._call(
                        method, proc_path, procedure, has, value, inputs.error, superjson, api_key
                    )
                results.append(result)

        if not batch:
            status, payload = results[0]
            return HTTPResponse(status, _encode(payload))
        statuses = {status for status, _ in results}
        if statuses == {200}:
            overall = 200
        elif len(statuses) == 1:
            overall = statuses.pop()
        else:
            overall = 207
        return HTTPResponse(overall, _encode([payload for _, payload in results]))

    def _call(
        self,
        method: str,
        path: str,
        procedure: Procedure | None,
        has_input: bool,
        raw: Any,
        input_error: str | None,
        superjson: bool,
        api_key: str | None,
    ) -> tuple[int, Any]:
        if procedure is None:
            return _call_error(
                "NOT_FOUND", f'No procedure found on path "{shown(path)}"', path, superjson
            )
        if method != ("GET" if procedure.kind == "query" else "POST"):
            return _call_error(
                "METHOD_NOT_SUPPORTED",
                f'Unsupported {method}-request to {procedure.kind} procedure at path "{path}"',
                path,
                superjson,
            )
        value = raw if has_input else None
        if procedure.input is not None:  # a procedure without input never reads it
            if input_error is None and superjson and has_input and is_superjson_shaped(raw):
                try:
                    value = superjson_deserialize(raw)
                except Exception as error:  # any malformed meta is the input's fault
                    input_error = f"Invalid superjson input: {shown(str(error))}"
            if input_error is not None:
                try:
                    self.engine.authenticate(api_key)
                except ProcedureError as error:
                    return _call_error(error.code, error.message, path, superjson)
                return _call_error("BAD_REQUEST", input_error, path, superjson)
        try:
            output = self.engine.call(path, value, api_key=api_key)
        except ProcedureError as error:
            return _call_error(error.code, error.message, path, superjson)
        except Exception:
            logger.exception("local ChatarminOS: %s failed", path)
            return _call_error("INTERNAL_SERVER_ERROR", "Internal server error", path, superjson)
        return 200, {"result": {"data": superjson_serialize(output) if superjson else output}}


def _call_error(code: str, message: str, path: str, superjson: bool) -> tuple[int, Any]:
    shape = _error_shape(code, message, path)
    return TRPC_CODE_STATUS.get(code, 500), {"error": {"json": shape} if superjson else shape}


def handle(
    engine: LocalEngine,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    options: ServerOptions | None = None,
    **changes: Any,
) -> HTTPResponse:
    """Answer one HTTP request as a ``@trpc/server`` v11 router set up by ``options`` would.

    A one-off :class:`TRPCHandler`; servers that answer many requests keep one instead.
    ``headers`` must have lower-case names.
    """
    return TRPCHandler(engine, options, **changes).handle(
        method, raw_path, query_string, headers, body
    )
