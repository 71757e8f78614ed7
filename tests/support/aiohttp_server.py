"""A small aiohttp server answering every path with one handler, for tests of the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer


@asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]], prefix: str
) -> AsyncIterator[str]:
    """Serve ``handle`` on 127.0.0.1 (a free port) for every method and path; yields the URL
    of ``prefix`` there, and stops the server after."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(prefix))
    finally:
        await server.close()
