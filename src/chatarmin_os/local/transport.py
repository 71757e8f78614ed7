"""httpx transports that answer from a :class:`LocalEngine` in-process: no socket at all.

A client built on one goes through the SDK's real codec and the server's real protocol
handling, so it exercises exactly the wire a deployment sees.
"""

from __future__ import annotations

import httpx

from .engine import LocalEngine
from .protocol import DEFAULT_PREFIX, ServerTransformer, handle

__all__ = ["AsyncLocalTransport", "LocalTransport"]


def _answer(
    engine: LocalEngine,
    request: httpx.Request,
    body: bytes,
    prefix: str,
    transformer: ServerTransformer,
) -> httpx.Response:
    response = handle(
        engine,
        request.method,
        request.url.raw_path.split(b"?", 1)[0].decode("ascii"),
        request.url.query.decode("ascii"),
        {name.lower(): value for name, value in request.headers.items()},
        body,
        prefix=prefix,
        transformer=transformer,
    )
    return httpx.Response(
        response.status, headers=response.headers, content=response.body, request=request
    )


class _EngineTransport:
    def __init__(
        self,
        engine: LocalEngine,
        *,
        prefix: str = DEFAULT_PREFIX,
        transformer: ServerTransformer = "auto",
    ) -> None:
        self.engine = engine
        """The engine that answers."""
        self._prefix = prefix
        self._transformer = transformer


class LocalTransport(_EngineTransport, httpx.BaseTransport):
    """A blocking httpx transport answered by ``engine``."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the engine."""
        return _answer(self.engine, request, request.read(), self._prefix, self._transformer)


class AsyncLocalTransport(_EngineTransport, httpx.AsyncBaseTransport):
    """An async httpx transport answered by ``engine`` (each call is one short transaction)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` from the engine."""
        body = await request.aread()
        return _answer(self.engine, request, body, self._prefix, self._transformer)
