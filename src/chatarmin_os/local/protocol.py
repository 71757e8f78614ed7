"""tRPC v11 over HTTP, server side: turn an HTTP request into engine calls and back.

One pure function, :func:`handle`, shared by the ASGI app (``chatarmin-os serve``) and the
in-process httpx transports, so every way of reaching the local ChatarminOS speaks the same
wire as ``@trpc/server``:

* ``GET {prefix}/{path}?input=…`` for queries, ``POST`` with ``Content-Type:
  application/json`` for mutations; the other method answers ``METHOD_NOT_SUPPORTED`` (405);
  a POST without a JSON content type answers ``UNSUPPORTED_MEDIA_TYPE`` (415);
* ``?batch=1`` with ``{path0},{path1}`` and an input object keyed ``"0"``, ``"1"``, …; the
  answer is an array, HTTP 200 when all succeeded, 207 when mixed, else the shared status;
* errors as ``{"error": {"message", "code", "data": {"code", "httpStatus", "path"}}}``;
* the transformer: ``"auto"`` (the default) answers in superjson when the request's input is
  superjson-shaped (``{"json": …, "meta"?: …}``), in plain JSON otherwise; ``"json"`` and
  ``"superjson"`` force one mode, as a real server is set up with exactly one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

from .._wire import (
    TRPC_CODE_NUMBER,
    TRPC_CODE_STATUS,
    dumps,
    superjson_deserialize,
    superjson_serialize,
    to_plain_json,
)
from .engine import PROCEDURES, LocalEngine, ProcedureError

__all__ = ["DEFAULT_PREFIX", "HTTPResponse", "ServerTransformer", "handle"]

logger = logging.getLogger("chatarmin_os.local")

DEFAULT_PREFIX = "/api/v1"
"""Where the procedures are mounted, as in ``http://localhost:3001/api/v1``."""

ServerTransformer = Literal["auto", "json", "superjson"]


@dataclass
class HTTPResponse:
    """What to answer: status, headers and a JSON body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


class _CallError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _error_shape(code: str, message: str, path: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "httpStatus": TRPC_CODE_STATUS.get(code, 500)}
    if path is not None:
        data["path"] = path
    return {"message": message, "code": TRPC_CODE_NUMBER.get(code, -32603), "data": data}


def _is_superjson(value: Any) -> bool:
    return isinstance(value, Mapping) and "json" in value and set(value) <= {"json", "meta"}


def _encode_output(value: Any, superjson: bool) -> Any:
    return superjson_serialize(value) if superjson else to_plain_json(value)


def _encode_error(code: str, message: str, path: str | None, superjson: bool) -> dict[str, Any]:
    shape = _error_shape(code, message, path)
    return {"error": {"json": shape} if superjson else shape}


def _json_response(status: int, payload: Any) -> HTTPResponse:
    return HTTPResponse(status, dumps(payload).encode("utf-8"))


def _read_inputs(
    method: str, query: Mapping[str, list[str]], body: bytes, batch: bool
) -> tuple[bool, Any]:
    """(was an input given, the parsed JSON) for the request."""
    if method == "GET":
        raw = query.get("input")
        if raw is None or raw[0] == "":  # tRPC reads an empty input= as no input
            return False, None
        text = raw[0]
    else:
        if not body.strip():
            return False, None
        text = body.decode("utf-8", errors="replace")
    try:
        return True, json.loads(text)
    except ValueError:
        raise _CallError("BAD_REQUEST", "Unable to parse the request input as JSON") from None


def _decode_input(value: Any, superjson: bool) -> Any:
    if superjson and _is_superjson(value):
        return superjson_deserialize(value)
    return value


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
) -> HTTPResponse:
    """Answer one HTTP request as a ``@trpc/server`` v11 router mounted at ``prefix`` would.

    ``headers`` must have lower-case names.
    """
    method = method.upper()
    path = unquote(raw_path)
    prefix = prefix.rstrip("/")
    query = parse_qs(query_string, keep_blank_values=True)
    batch = query.get("batch", ["0"])[0] in ("1", "true")
    default_sj = transformer == "superjson"

    if not (path.startswith(prefix + "/") or path == prefix):
        return _json_response(
            404,
            _encode_error("NOT_FOUND", f'No procedure found on path "{path}"', None, default_sj),
        )
    paths = path[len(prefix) + 1 :].split(",") if batch else [path[len(prefix) + 1 :]]

    def fail(code: str, message: str, at: str | None) -> HTTPResponse:
        return _json_response(
            TRPC_CODE_STATUS.get(code, 500), _encode_error(code, message, at, default_sj)
        )

    if method not in ("GET", "POST"):
        return fail("METHOD_NOT_SUPPORTED", f"Unsupported {method}-request to {paths[0]}", paths[0])
    if method == "POST":
        content_type = headers.get("content-type", "")
        if not content_type:
            return fail("UNSUPPORTED_MEDIA_TYPE", "Missing content-type header", None)
        if content_type.split(";")[0].strip().lower() != "application/json":
            return fail(
                "UNSUPPORTED_MEDIA_TYPE", f'Unsupported content-type "{content_type}"', None
            )

    kinds = list(dict.fromkeys(PROCEDURES[p] for p in paths if p in PROCEDURES))
    if len(kinds) > 1:
        return fail("BAD_REQUEST", "Cannot mix procedure types in call: " + ", ".join(kinds), None)
    try:
        given, parsed = _read_inputs(method, query, body, batch)
    except _CallError as exc:
        return fail(exc.code, exc.message, paths[0])

    if batch:
        if given and not isinstance(parsed, Mapping):
            return fail(
                "BAD_REQUEST", '"input" needs to be an object when doing a batch call', None
            )
        inputs = [
            (str(i) in parsed, parsed.get(str(i))) if given else (False, None)
            for i in range(len(paths))
        ]
    else:
        inputs = [(given, parsed)]

    if transformer == "auto":
        superjson = any(has and _is_superjson(value) for has, value in inputs)
    else:
        superjson = transformer == "superjson"

    auth = headers.get("authorization", "")
    api_key = auth[7:].strip() if auth[:7].lower() == "bearer " else None

    results: list[tuple[int, Any]] = []
    for proc_path, (has, value) in zip(paths, inputs, strict=True):
        results.append(_call_one(engine, method, proc_path, has, value, superjson, api_key))

    if not batch:
        status, payload = results[0]
        return _json_response(status, payload)
    statuses = {status for status, _ in results}
    if statuses == {200}:
        overall = 200
    elif len(statuses) == 1:
        overall = statuses.pop()
    else:
        overall = 207
    return _json_response(overall, [payload for _, payload in results])


def _call_one(
    engine: LocalEngine,
    method: str,
    path: str,
    has_input: bool,
    raw: Any,
    superjson: bool,
    api_key: str | None,
) -> tuple[int, Any]:
    def error(code: str, message: str) -> tuple[int, Any]:
        return TRPC_CODE_STATUS.get(code, 500), _encode_error(code, message, path, superjson)

    kind = PROCEDURES.get(path)
    if kind is None:
        return error("NOT_FOUND", f'No procedure found on path "{path}"')
    expected = "GET" if kind == "query" else "POST"
    if method != expected:
        return error(
            "METHOD_NOT_SUPPORTED",
            f'Unsupported {method}-request to {kind} procedure at path "{path}"',
        )
    try:
        value = _decode_input(raw, superjson) if has_input else None
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return error("BAD_REQUEST", f"Invalid superjson input: {exc}")
    try:
        output = engine.call(path, value, api_key=api_key)
    except ProcedureError as exc:
        return error(exc.code, exc.message)
    except Exception:
        logger.exception("local ChatarminOS: %s failed", path)
        return error("INTERNAL_SERVER_ERROR", "Internal server error")
    return 200, {"result": {"data": _encode_output(output, superjson)}}
