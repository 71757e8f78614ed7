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
* a body over ``max_body`` bytes answers ``PAYLOAD_TOO_LARGE`` (413), nothing runs;
* errors as ``{"error": {"message", "code", "data": {"code", "httpStatus", "path"}}}`` —
  whatever the input (malformed or deeply nested JSON, invalid Unicode), never a bare 500;
* the transformer: ``"auto"`` (the default) answers in superjson when the request's input is
  superjson-shaped (``{"json": …, "meta"?: …}``), in plain JSON otherwise; ``"json"`` and
  ``"superjson"`` force one mode, as a real server is set up with exactly one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn
from urllib.parse import unquote_plus, unquote_to_bytes

from .._wire import (
    TRPC_CODE_NUMBER,
    TRPC_CODE_STATUS,
    dumps_plain,
    is_superjson_shaped,
    superjson_deserialize,
    superjson_serialize,
)
from ._errors import ProcedureError
from ._registry import REGISTRY, Procedure
from .engine import LocalEngine

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PREFIX",
    "HTTPResponse",
    "ServerTransformer",
    "TRPCHandler",
    "error_body",
    "handle",
]

logger = logging.getLogger("chatarmin_os.local")

DEFAULT_PREFIX = "/api/v1"
"""Where the procedures are mounted, as in ``http://localhost:3001/api/v1``."""

DEFAULT_MAX_BATCH = 100
"""The most calls one batch may hold (``@trpc/server``'s ``maxBatchSize``)."""

DEFAULT_MAX_BODY = 1024 * 1024
"""The largest request body accepted, in bytes (1 MiB)."""

ServerTransformer = Literal["auto", "json", "superjson"]
"""How a server encodes values: per request (``auto``), plain JSON, or superjson."""

_JSON_HEADERS = {"content-type": "application/json"}


@dataclass
class HTTPResponse:
    """What to answer: status, headers and a JSON body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(_JSON_HEADERS))


def error_body(code: str, message: str, path: str | None = None) -> bytes:
    """A plain-JSON tRPC error envelope, encoded (for answers given outside the handler)."""
    return _encode({"error": _error_shape(code, message, path)})


class _Refused(Exception):
    """The whole request is refused before any procedure runs."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path


def _refuse(code: str, message: str, path: str | None = None) -> NoReturn:
    raise _Refused(code, message, path)


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


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(text: str | bytes) -> Any:
    """``JSON.parse``: strict (no ``NaN``/``Infinity``); any failure is ``ValueError``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _decode_path(raw: str) -> str:
    """``decodeURIComponent``: percent-escapes decoded as UTF-8, strictly (else ``ValueError``)."""
    if "%" not in raw:
        return raw
    data = raw.encode("latin-1")
    if _BAD_ESCAPE.search(data):
        raise ValueError("malformed percent-escape")
    return unquote_to_bytes(data).decode("utf-8")  # UnicodeDecodeError is a ValueError


def _query_params(query: str) -> tuple[str | None, bool]:
    """(``input`` or ``None``, ``batch=1``) of a query string, read as URLSearchParams does."""
    input_value: str | None = None
    batch: str | None = None
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if name != "input" and name != "batch":
            name = unquote_plus(name)
        if name == "input" and input_value is None:
            input_value = unquote_plus(value)
        elif name == "batch" and batch is None:
            batch = unquote_plus(value)
    return input_value, batch == "1"


class TRPCHandler:
    """A ``@trpc/server`` v11 router over ``engine``, mounted at ``prefix``.

    ``max_batch`` caps the calls in one batch, ``batching=False`` refuses batches,
    ``max_body`` caps the request body (bytes). Set :attr:`stopping` to make the calls left
    in a running batch answer ``SERVICE_UNAVAILABLE`` (a server shutting down).
    """

    def __init__(
        self,
        engine: LocalEngine,
        *,
        prefix: str = DEFAULT_PREFIX,
        transformer: ServerTransformer = "auto",
        max_batch: int = DEFAULT_MAX_BATCH,
        batching: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        """Serve ``engine``'s procedures with these options."""
        if transformer not in ("auto", "json", "superjson"):
            raise ValueError(f"transformer must be auto, json or superjson, got {transformer!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_body < 1:
            raise ValueError(f"max_body must be at least 1, got {max_body}")
        self.engine = engine
        """The engine that answers."""
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        """The path the procedures are mounted at (no trailing slash)."""
        self.transformer: ServerTransformer = transformer
        self.max_batch = max_batch
        self.batching = batching
        self.max_body = max_body
        self.stopping = False
        """Set when the server shuts down: the rest of a running batch is not run."""

    def __repr__(self) -> str:
        return (
            f"TRPCHandler(prefix={self.prefix!r}, transformer={self.transformer!r}, "
            f"max_batch={self.max_batch}, batching={self.batching}, max_body={self.max_body})"
        )

    # -- one request ---------------------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> HTTPResponse:
        """Answer one HTTP request as ``@trpc/server`` would.

        ``raw_path`` is the path as sent (still percent-encoded, no query string),
        ``headers`` have lower-case names (only ``authorization`` and ``content-type`` are
        read).
        """
        superjson = self.transformer == "superjson"
        try:
            return self._handle(method.upper(), raw_path, query_string, headers, body)
        except _Refused as refused:
            shape = _error_shape(refused.code, refused.message, refused.path)
            return HTTPResponse(
                TRPC_CODE_STATUS[refused.code],
                _encode({"error": {"json": shape} if superjson else shape}),
            )

    def _handle(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> HTTPResponse:
        prefix = self.prefix
        if raw_path != prefix and not raw_path.startswith(prefix + "/"):
            # Matched on the raw path: "/api/v1%2ftiers.list" is not under "/api/v1/".
            _refuse("NOT_FOUND", f'No procedure found on path "{_shown(raw_path)}"')
        if method == "HEAD":
            return HTTPResponse(204, b"", {})
        rest = raw_path[len(prefix) :]
        rest = rest[1:] if rest.startswith("/") else rest
        rest = rest[:-1] if rest.endswith("/") else rest
        try:
            path = _decode_path(rest)
        except ValueError:
            _refuse("BAD_REQUEST", f'Invalid URL-encoding in path "{_shown(rest)}"')
        if method != "GET":
            content_type = headers.get("content-type")
            if content_type is None:
                _refuse("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                # Verbatim @trpc/server, unbalanced quote included.
                _refuse("UNSUPPORTED_MEDIA_TYPE", f'Unsupported content-type "{content_type}')
        raw_input, batch = _query_params(query_string) if query_string else (None, False)
        paths = path.split(",") if batch else [path]
        # In @trpc/server's order: the batch size, mixed kinds, then batching allowed at all.
        if batch and len(paths) > self.max_batch:
            _refuse("BAD_REQUEST", "Batch call exceeds maximum size")
        procedures = [REGISTRY.get(p) for p in paths]
        if batch:
            kinds = list(dict.fromkeys(p.kind for p in procedures if p is not None))
            if len(kinds) > 1:
                _refuse("BAD_REQUEST", "Cannot mix procedure types in call: " + ", ".join(kinds))
            if not self.batching:
                _refuse("BAD_REQUEST", "Batching is not enabled on the server")
        if len(body) > self.max_body:
            _refuse("PAYLOAD_TOO_LARGE", f"Request body exceeds the limit of {self.max_body} bytes")

        # The input: given or not, and parsed. A failure here is the error of every call
        # that reads its input (after its path, method and API key are checked), as in tRPC.
        text: str | bytes | None = raw_input if method == "GET" else body
        given = bool(text) and (method == "GET" or bool(body.strip()))
        parsed: Any = None
        input_error: str | None = None
        if given:
            assert text is not None
            try:
                parsed = _parse_json(text)
            except ValueError as error:  # includes UnicodeDecodeError
                input_error = f"Unable to parse the request input as JSON: {_shown(str(error))}"
        if not batch:
            inputs = [(given, parsed)]
        elif not given or input_error is not None:
            inputs = [(False, None)] * len(paths)
        elif isinstance(parsed, Mapping):
            inputs = [(str(i) in parsed, parsed.get(str(i))) for i in range(len(paths))]
        else:
            inputs = [(False, None)] * len(paths)
            input_error = '"input" needs to be an object when doing a batch call'

        if self.transformer == "auto":
            superjson = any(has and is_superjson_shaped(value) for has, value in inputs)
        else:
            superjson = self.transformer == "superjson"
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
                    has, value = inputs[index]
                    result = self._call(
                        method, proc_path, procedure, has, value, input_error, superjson, api_key
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
                "NOT_FOUND", f'No procedure found on path "{_shown(path)}"', path, superjson
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
                    input_error = f"Invalid superjson input: {_shown(str(error))}"
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


def _shown(text: str, limit: int = 200) -> str:
    """A piece of the request echoed in a message: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def handle(
    engine: LocalEngine,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    prefix: str = DEFAULT_PREFIX,
    transformer: ServerTransformer = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    batching: bool = True,
    max_body: int = DEFAULT_MAX_BODY,
) -> HTTPResponse:
    """Answer one HTTP request as a ``@trpc/server`` v11 router mounted at ``prefix`` would.

    A one-off :class:`TRPCHandler`; servers that answer many requests keep one instead.
    ``headers`` must have lower-case names.
    """
    handler = TRPCHandler(
        engine,
        prefix=prefix,
        transformer=transformer,
        max_batch=max_batch,
        batching=batching,
        max_body=max_body,
    )
    return handler.handle(method, raw_path, query_string, headers, body)
