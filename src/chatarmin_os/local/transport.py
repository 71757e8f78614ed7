"""httpx transports that answer from a :class:`LocalEngine` in-process: no socket at all.

A client built on one goes through the SDK's real codec and the server's real tRPC handling
(:class:`~chatarmin_os.local.protocol.TRPCHandler`), so it exercises exactly the wire a
deployment sees; only the HTTP machinery in between is skipped. ``handle_request`` reads the
request's method, raw path, two headers and body, and answers with a ready
:class:`httpx.Response`, so a client may call it directly instead of going through
``httpx.Client.send``.

:meth:`LocalTransport.answer` goes one step further for a client that knows it is local: it
takes the encoded request itself (``_wire.encode_request``'s method, URL and body) and returns
the status and body, with no httpx objects on either side — the same bytes, the same tRPC
handling, a fraction of the cost (building an :class:`httpx.Request` re-parses the long
``?input=`` URL character by character).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .engine import LocalEngine
from .protocol import HTTPResponse, ServerOptions, TRPCHandler

__all__ = ["AsyncLocalTransport", "LocalTransport"]

_READ = ("authorization", "content-type")


def _answer(handler: TRPCHandler, request: httpx.Request, body: bytes) -> httpx.Response:
    path, _, query = request.url.raw_path.partition(b"?")
    headers: dict[str, str] = {}
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered == b"authorization" or lowered == b"content-type":
            headers[lowered.decode("latin-1")] = value.decode("latin-1")
    answer = handler.handle(
        request.method, path.decode("latin-1"), query.decode("latin-1"), headers, body
    )
    response = httpx.Response(
        answer.status,
        headers=answer.headers,
        stream=httpx.ByteStream(answer.body),
        request=request,
    )
    # The body is complete already: hand it over as read, instead of letting httpx read a
    # ByteStream through its decoders (what `content=` does; most of a response's cost).
    response._content = answer.body
    return response


class _EngineTransport:
    def __init__(
        self, engine: LocalEngine, options: ServerOptions | None = None, **changes: Any
    ) -> None:
        self.handler = TRPCHandler(engine, options, **changes)
        """The tRPC handling in front of the engine (its options: batching, limits, ...)."""

    @property
    def engine(self) -> LocalEngine:
        """The engine that answers."""
        return self.handler.engine

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> HTTPResponse:
        """Answer an encoded request directly: the fast path of a client bound to this transport.

        ``target`` is the URL relative to the mount point, query string included, as
        ``_wire.encode_request`` makes it (``"features.check?input=%7B%7D"``); ``headers``
        (a mapping or an :class:`httpx.Headers`) need ``authorization`` and, with a body,
        ``content-type`` (names in any case).
        Returns the status and the JSON body (``headers`` of the answer say its type).
        """
        path, _, query = target.partition("?")
        if isinstance(headers, httpx.Headers):  # a client's own: names in any case already
            lowered = {name: value for name in _READ if (value := headers.get(name)) is not None}
        else:
            lowered = {name.lower(): value for name, value in headers.items()}
        return self.handler.handle(
            method, f"{self.handler.prefix}/{path}", query, lowered, body or b""
        )


class LocalTransport(_EngineTransport, httpx.BaseTransport):
    """A blocking httpx transport answered by ``engine`` (``options``: a
    :class:`~chatarmin_os.local.ServerOptions`, or keywords of its fields)."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the engine."""
        return _answer(self.handler, request, request.read())


class AsyncLocalTransport(_EngineTransport, httpx.AsyncBaseTransport):
    """An async httpx transport answered by ``engine`` (each call is one short transaction)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the engine."""
        body = await request.aread()
        return _answer(self.handler, request, body)
