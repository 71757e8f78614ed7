"""Client side of the wire: turn an HTTP answer into a call's output or its typed error.

Everything that is not a tRPC envelope (HTML from a proxy, an empty or invalid body, a 200
without ``result``) becomes a typed error carrying the status and a short body snippet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ._exceptions import APIResponseValidationError, APIStatusError, error_class_for
from ._types import Transformer
from ._wire import is_superjson_shaped, superjson_deserialize

__all__ = ["decode_response"]

_SNIPPET_CHARS = 200


def _snippet(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "…"


def _not_trpc(response: httpx.Response, path: str, why: str) -> Exception:
    content_type = response.headers.get("content-type", "no content-type")
    message = (
        f"Expected a tRPC answer from {path} but got {why} "
        f"(HTTP {response.status_code}, {content_type}): {_snippet(response)}"
    )
    if response.is_success:
        return APIResponseValidationError(message, path=path, response=response)
    cls = error_class_for(response.status_code, None)
    return cls(message, response=response, path=path, code=None)


def _error_from_envelope(
    response: httpx.Response, path: str, error: Mapping[str, Any]
) -> APIStatusError:
    data = error.get("data")
    data = data if isinstance(data, Mapping) else {}
    code = data.get("code") if isinstance(data.get("code"), str) else None
    message = error.get("message")
    if not isinstance(message, str) or not message:
        message = code or f"HTTP {response.status_code}"
    error_path = data.get("path")
    if not isinstance(error_path, str):
        error_path = path
    cls = error_class_for(response.status_code, code)
    return cls(message, response=response, path=error_path, code=code, body=dict(error))


def decode_response(response: httpx.Response, *, path: str, transformer: Transformer) -> Any:
    """The output of a call, or the typed error its answer stands for (raised).

    Anything that is not a tRPC envelope (HTML from a proxy, an empty or invalid body, a
    200 without ``result``) raises a typed error carrying the status and a body snippet.
    """
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        raise _not_trpc(response, path, "a body that is not JSON") from None
    if not isinstance(body, Mapping):
        raise _not_trpc(response, path, "an empty body" if body is None else "unexpected JSON")

    error = body.get("error")
    if isinstance(error, Mapping):
        if is_superjson_shaped(error):  # superjson-wrapped
            error = superjson_deserialize(error)
        if isinstance(error, Mapping):
            raise _error_from_envelope(response, path, error)
        raise _not_trpc(response, path, "an error envelope of an unknown shape")

    result = body.get("result")
    if not isinstance(result, Mapping) or not response.is_success:
        raise _not_trpc(response, path, "JSON without a tRPC 'result'")
    data = result.get("data")
    if transformer == "superjson":
        if data is None:
            return None
        try:
            return superjson_deserialize(data)
        except ValueError:
            raise _not_trpc(
                response,
                path,
                "a result that is not superjson (is the server set up without a transformer? "
                "then use transformer='json')",
            ) from None
    if is_superjson_shaped(data):
        raise _not_trpc(
            response,
            path,
            "a superjson-wrapped result (the server uses superjson: "
            "create the client with transformer='superjson')",
        )
    return data
