"""Client side of the wire: turn an HTTP answer into a call's output or its typed error.

Everything that is not a tRPC envelope (HTML from a proxy, an empty or invalid body, a 200
without ``result``) becomes a typed error carrying the status and a short body snippet.
Hostile answers too: an odd charset, a superjson ``meta`` that points into nothing, a body
nested too deeply to decode, huge numbers. Whatever an answer holds, decoding it raises
only :class:`~chatarmin_os.ChatarminOSError`: the class of the HTTP status for an error
status, :class:`~chatarmin_os.APIResponseValidationError` for a 2xx, the cause chained.
"""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Mapping
from typing import Any

from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    ChatarminOSError,
    error_class_for,
    shorten,
)
from ._types import HTTPResponse, Transformer
from ._wire import MAX_INT_DIGITS, is_superjson_shaped, superjson_deserialize

__all__ = ["decode_batch", "decode_response", "unusable_answer"]

_SNIPPET_CHARS = 200
_CONTENT_TYPE_CHARS = 100
# Enough bytes for a 200-character snippet in any encoding (UTF-32: 4 bytes a character).
_SNIPPET_BYTES = 4 * (_SNIPPET_CHARS + 1)


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


_JSON_OPTIONS: dict[str, Any] = {} if sys.version_info >= (3, 11) else {"parse_int": _parse_int}


def _charset(response: HTTPResponse) -> str:
    """The answer's declared charset when Python has a text codec for it, else UTF-8."""
    _, _, params = response.headers.get("content-type", "").partition(";")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset":
            try:
                info = codecs.lookup(value.strip().strip("\"'"))
            except (LookupError, ValueError):
                return "utf-8"
            # Only real text encodings: not rot13/base64 (str<->str, bytes<->bytes) or idna.
            if getattr(info, "_is_text_encoding", True) and info.name not in ("idna", "punycode"):
                return info.name
    return "utf-8"


def _snippet(response: HTTPResponse) -> str:
    """The start of the body as text, on one line: never a decoding error, never long."""
    raw = response.content[:_SNIPPET_BYTES]
    try:
        text = raw.decode(_charset(response), errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        text = raw.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    cut = len(text) > _SNIPPET_CHARS or len(response.content) > len(raw)
    return text[:_SNIPPET_CHARS] + "…" if cut else text


def _not_trpc(response: HTTPResponse, path: str, why: str) -> ChatarminOSError:
    content_type = shorten(
        response.headers.get("content-type", "no content-type"), _CONTENT_TYPE_CHARS
    )
    message = (
        f"Expected a tRPC answer from {path} but got {why} "
        f"(HTTP {response.status_code}, {content_type}): {_snippet(response)}"
    )
    return unusable_answer(response, path, message)


def unusable_answer(response: HTTPResponse, path: str, message: str) -> ChatarminOSError:
    """The error for an answer that carries no tRPC result or error: a 2xx one is
    :class:`APIResponseValidationError`, any other the error of its status (no tRPC code)."""
    if response.is_success:
        return APIResponseValidationError(message, path=path, response=response)
    cls = error_class_for(response.status_code, None)
    return cls(message, response=response, path=path, code=None)


def _error_from_envelope(
    response: HTTPResponse, path: str, error: Mapping[str, Any], *, in_batch: bool = False
) -> APIStatusError:
    data = error.get("data")
    data = data if isinstance(data, Mapping) else {}
    code = data.get("code") if isinstance(data.get("code"), str) else None
    status = response.status_code
    if in_batch:  # one call of a batch: its own status, not the batch's (207, ...)
        own = data.get("httpStatus")
        if isinstance(own, int) and not isinstance(own, bool) and 100 <= own <= 599:
            status = own
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = code or f"HTTP {status}"
    error_path = data.get("path")
    if not isinstance(error_path, str) or not error_path:
        error_path = path
    cls = error_class_for(status, code)
    exc = cls(message, response=response, path=error_path, code=code, body=dict(error))
    exc.status_code = status
    return exc


def decode_response(response: HTTPResponse, *, path: str, transformer: Transformer) -> Any:
    """The output of a call, or the typed error its answer stands for (raised).

    Anything that is not a tRPC envelope (HTML from a proxy, an empty or invalid body, a
    200 without ``result``) raises a typed error carrying the status and a body snippet;
    nothing but a :class:`~chatarmin_os.ChatarminOSError` ever escapes.
    """
    try:
        return _decode(response, path, transformer)
    except ChatarminOSError:
        raise
    except Exception as exc:  # a hostile answer nobody foresaw: still an SDK error
        raise _not_trpc(
            response, path, f"an answer the SDK cannot decode ({type(exc).__name__})"
        ) from exc


def _json(response: HTTPResponse, path: str) -> Any:
    content = response.content
    try:
        return json.loads(content, **_JSON_OPTIONS) if content else None
    except RecursionError as exc:
        raise _not_trpc(response, path, "JSON nested too deeply to decode") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a huge number
        raise _not_trpc(response, path, "a body that is not JSON") from exc


def _decode(response: HTTPResponse, path: str, transformer: Transformer) -> Any:
    body = _json(response, path)
    if not isinstance(body, Mapping):
        raise _not_trpc(response, path, "an empty body" if body is None else "unexpected JSON")
    return _decode_envelope(body, response, path, transformer)


def decode_batch(
    response: HTTPResponse, *, paths: list[str], transformer: Transformer
) -> list[Any]:
    """Each call's output, or the SDK error it ended in (returned, not raised), in order.

    The answer to a batch is an array of envelopes, one per call, whatever its HTTP status
    (200, 207, or the status all calls share). An answer that is not an array stands for
    the whole request (a tRPC error for the batch, an HTML page): its error is raised, for
    the caller to give every call. A call the array has no envelope for gets an
    :class:`~chatarmin_os.APIResponseValidationError`.
    """
    label = ",".join(paths)
    try:
        body = _json(response, label)
        if not isinstance(body, list):
            if isinstance(body, Mapping):
                _decode_envelope(body, response, label, transformer)  # raises for an error
            raise _not_trpc(response, label, "an answer that is not an array, to a batch")
    except ChatarminOSError:
        raise
    except Exception as exc:
        raise _not_trpc(
            response, label, f"an answer the SDK cannot decode ({type(exc).__name__})"
        ) from exc
    outcomes: list[Any] = []
    for index, path in enumerate(paths):
        try:
            if index >= len(body):
                raise APIResponseValidationError(
                    f"The batch answer has no result for call {index} ({path}).",
                    path=path,
                    response=response,
                )
            item = body[index]
            if not isinstance(item, Mapping):
                raise _not_trpc(response, path, f"a batch item {index} that is not an envelope")
            outcomes.append(_decode_envelope(item, response, path, transformer, in_batch=True))
        except ChatarminOSError as exc:
            outcomes.append(exc)
        except Exception as exc:
            error = _not_trpc(
                response, path, f"an answer the SDK cannot decode ({type(exc).__name__})"
            )
            error.__cause__ = exc
            outcomes.append(error)
    return outcomes


def _decode_envelope(
    body: Mapping[str, Any],
    response: HTTPResponse,
    path: str,
    transformer: Transformer,
    *,
    in_batch: bool = False,
) -> Any:
    error = body.get("error")
    if isinstance(error, Mapping):
        if is_superjson_shaped(error):  # superjson-wrapped
            try:
                error = superjson_deserialize(error)
            except ValueError:
                # A meta that does not fit: the error itself is still in "json".
                error = error["json"]
        if isinstance(error, Mapping):
            raise _error_from_envelope(response, path, error, in_batch=in_batch)
        raise _not_trpc(response, path, "an error envelope of an unknown shape")

    result = body.get("result")
    # A call of a batch may succeed in a 207 answer; a lone call only in a 2xx.
    if not isinstance(result, Mapping) or not (in_batch or response.is_success):
        raise _not_trpc(response, path, "JSON without a tRPC 'result'")
    data = result.get("data")
    if transformer == "superjson":
        if data is None:
            return None
        if not isinstance(data, Mapping) or "json" not in data:
            raise _not_trpc(
                response,
                path,
                "a result that is not superjson (is the server set up without a transformer? "
                "then use transformer='json')",
            )
        try:
            return superjson_deserialize(data)
        except ValueError as exc:
            raise _not_trpc(
                response,
                path,
                f"a superjson result whose meta does not fit it ({shorten(str(exc), 100)})",
            ) from exc
    if is_superjson_shaped(data):
        raise _not_trpc(
            response,
            path,
            "a superjson-wrapped result (the server uses superjson: "
            "create the client with transformer='superjson')",
        )
    return data
