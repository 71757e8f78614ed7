"""The local ChatarminOS as an ASGI application (served by ``chatarmin-os serve``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from .._wire import TRPC_CODE_NUMBER, dumps
from .engine import LocalEngine
from .protocol import DEFAULT_PREFIX, ServerTransformer, handle

__all__ = ["create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_BODY = 64 * 1024 * 1024
_TOO_LARGE = dumps(
    {
        "error": {
            "message": f"Request body exceeds {_MAX_BODY // (1024 * 1024)} MiB",
            "code": TRPC_CODE_NUMBER["PAYLOAD_TOO_LARGE"],
            "data": {"code": "PAYLOAD_TOO_LARGE", "httpStatus": 413},
        }
    }
).encode("utf-8")


def create_app(
    engine: LocalEngine,
    *,
    prefix: str = DEFAULT_PREFIX,
    transformer: ServerTransformer = "auto",
) -> ASGIApp:
    """An ASGI app serving ``engine``'s procedures under ``prefix`` (default ``/api/v1``).

    Engine calls run in a worker thread (the engine serialises them), so slow disks never
    stall the event loop. ``GET /healthz`` answers ``{"ok": true}``.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await _send(send, 200, {"content-type": "application/json"}, b'{"ok":true}')
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                await _send(send, 413, {"content-type": "application/json"}, _TOO_LARGE)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        query = scope.get("query_string", b"").decode("latin-1")
        response = await anyio.to_thread.run_sync(
            lambda: handle(
                engine,
                scope["method"],
                raw_path.decode("latin-1"),
                query,
                headers,
                b"".join(chunks),
                prefix=prefix,
                transformer=transformer,
            )
        )
        await _send(send, response.status, response.headers, response.body)

    return app


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", headers.get("content-type", "application/json").encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
