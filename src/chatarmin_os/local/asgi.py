"""The local ChatarminOS as an ASGI application, for any ASGI server.

``chatarmin-os serve`` runs the same :class:`TRPCApp` through its own HTTP/1.1 protocol on
uvicorn (see ``_uvicorn.py``), calling :meth:`TRPCApp.respond` directly. Either way each
request is answered in the event loop itself: an engine call is a short SQLite transaction
(tens of microseconds), cheaper than handing it to a worker thread, and the engine runs one
call at a time anyway. Work per request is bounded by the body limit and the batch limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._options import ServerOptions
from ._request_id import REQUEST_ID_HEADER, new_request_id
from .engine import LocalEngine
from .protocol import HTTPResponse, TRPCHandler, answer_headers, error_body

__all__ = ["TRPCApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEALTHY = b'{"ok":true}'


class TRPCApp:
    """An ASGI app answering ``handler``'s procedures, plus ``GET /healthz`` (``{"ok":true}``).

    A body longer than the handler's ``max_body`` is refused with ``PAYLOAD_TOO_LARGE``
    (413) as soon as its ``Content-Length`` (or its size so far) says so, without reading
    the rest, and the connection is closed.
    """

    def __init__(self, handler: TRPCHandler) -> None:
        """Serve ``handler``."""
        self.handler = handler
        """The tRPC handling (set ``handler.stopping`` when shutting down)."""
        self._too_large = error_body(
            "PAYLOAD_TOO_LARGE", f"Request body exceeds the limit of {handler.max_body} bytes"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def respond(
        self,
        method: str,
        raw_path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        request_id: str | None = None,
    ) -> HTTPResponse:
        """The answer to a request read completely (``chatarmin-os serve`` calls it directly;
        the ASGI entry point after reading the body), with ``request_id`` (a new one when
        omitted) in its ``x-request-id`` header. ``headers``: see
        :meth:`~chatarmin_os.local.protocol.TRPCHandler.handle`.
        """
        if raw_path == "/healthz":
            rid = request_id or new_request_id()
            if method in ("GET", "HEAD"):
                return HTTPResponse(200, _HEALTHY, answer_headers(rid, _HEALTHY))
            message = error_body(
                "METHOD_NOT_SUPPORTED", f"Unsupported {method}-request to /healthz"
            )
            return HTTPResponse(405, message, answer_headers(rid, message))
        return self.handler.handle(method, raw_path, query, headers, body, request_id=request_id)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        headers: dict[str, str] = {}
        length = -1
        for name, value in scope["headers"]:
            if name == b"authorization" or name == b"content-type":
                headers[name.decode("latin-1")] = value.decode("latin-1")
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        limit = self.handler.max_body
        body = b""
        if method != "GET" and method != "HEAD":
            if length > limit:
                await _send(send, 413, self._too_large, new_request_id(), close=True)
                return
            chunks: list[bytes] = []
            size = 0
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _send(send, 413, self._too_large, new_request_id(), close=True)
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        query: bytes = scope.get("query_string", b"")
        answer = self.respond(
            method, raw_path.decode("latin-1"), query.decode("latin-1"), headers, body
        )
        await _send(send, answer.status, answer.body, answer.request_id)


def create_app(
    engine: LocalEngine, options: ServerOptions | None = None, **changes: Any
) -> TRPCApp:
    """An ASGI app serving ``engine``'s procedures as ``options`` say (a
    :class:`~chatarmin_os.local.ServerOptions`; keywords of its field names adjust it).
    """
    return TRPCApp(TRPCHandler(engine, options, **changes))


async def _send(
    send: Send, status: int, body: bytes, request_id: str, *, close: bool = False
) -> None:
    headers = [
        (b"content-length", str(len(body)).encode("ascii")),
        (REQUEST_ID_HEADER.encode("ascii"), request_id.encode("ascii")),
    ]
    if body:
        headers.append((b"content-type", b"application/json"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
