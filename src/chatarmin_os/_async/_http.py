"""The connection pool a client sends through: fork- and event-loop-aware, with a lean send path.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_http.py``.

* **Ours or yours.** Without ``http_client`` the pool is ours: an ``httpx2.AsyncClient`` when
  httpx2 is installed, else an :class:`httpx.AsyncClient` (``CHATARMIN_OS_HTTP_LIBRARY``
  forces one; see ``_client.library``), made on first use (proxies and certificates from the
  environment, as the library does), with idle connections kept :data:`KEEPALIVE_EXPIRY`
  seconds. An ``http_client`` you pass (httpx's or httpx2's) is yours: we send through it
  and never close, replace or reconfigure it. Each request is built with the library of the
  client it goes through.
* **Fork.** In a child made by ``os.fork()`` our pool is dropped (not closed: its sockets
  are the parent's) and a fresh one is made on first use; the parent's pool is untouched.
  Your own client is yours after a fork too: make it in the child (or let us own the pool).
* **Event loops.** Connections belong to the event loop that opened them. When our pool is
  used under another loop (``asyncio.run`` twice, a fresh loop per test, a forked child),
  the old pool is dropped and a fresh one made for the new loop.
* **Lean send.** httpx's ``Client.send`` does work an API client does not need on every
  call (auth flows, redirect and cookie handling, event hooks). When the client is plain —
  always for ours; for yours, when it has no ``auth``, no event hooks, no default ``params``
  or cookies and does not follow redirects — the request goes straight to the transport the
  client would pick for the URL (mounts and proxies included), with its default headers;
  otherwise through ``send()`` with all of that.
"""

from __future__ import annotations

import ssl
import threading
from types import ModuleType
from typing import Any, Protocol

import httpx

from .._client import library
from .._client.outcomes import BodyDecodingError
from .._client.pool import HTTPPoolCore, InProcessAnswer, PoolCore, is_plain
from .._client.request import WireRequest
from .._concurrency import async_network_backend, current_loop
from .._exceptions import ChatarminOSError
from .._types import AsyncHTTPClient, HTTPResponse

__all__ = [
    "KEEPALIVE_EXPIRY",
    "AsyncHTTPPool",
    "AsyncInProcessPool",
    "AsyncPool",
    "BodyDecodingError",
]

KEEPALIVE_EXPIRY = 4.0
"""Seconds an idle pooled connection is kept.

Less than the 5 s after which common servers (uvicorn, Node.js, Apache) close idle
keep-alive connections: a connection the server is about to close is never reused, so a
request never races the server's close (which fails it with no way to tell whether the
server saw it).
"""


_ssl_contexts: dict[str, ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def _shared_ssl_context(lib: ModuleType) -> ssl.SSLContext:
    """One SSL context per process and library (loading the CA bundle costs ~15 ms), shared
    by our pools."""
    with _ssl_lock:
        context = _ssl_contexts.get(lib.__name__)
        if context is None:
            context = _ssl_contexts[lib.__name__] = lib.create_ssl_context()
        return context


MAX_CONNECTIONS = 100
"""Connections our own pool opens at most (all kept alive while idle, up to
:data:`KEEPALIVE_EXPIRY`): a burst of 100 concurrent calls reuses them all next time."""

SHARDS = 25
"""How many smaller pools our own pool is made of (see :class:`AsyncShardedTransport`)."""


class AsyncShardedTransport(httpx.AsyncBaseTransport):
    """Our own pool's transport: the library's HTTP transport, split into ``shards`` pools of
    ``max_connections / shards`` connections each; a request goes to the least busy one.

    httpcore's pool looks at every connection and every waiting request each time a
    request arrives or ends, so its cost per request grows with the number of connections:
    at 100 concurrent calls it was the largest cost of a call. 25 pools of 4 cut it
    25-fold (``benchmarks/bench_http_libs.py``; from ten pools of ten, 8% fewer Python calls
    per request through httpx2), while a request that finds every connection busy still
    waits for any of four, not for one. Calls one at a time use one connection of the first
    pool, as with a single pool. Works with httpx's and httpx2's transports (the
    requests and responses are the library's own; this class only routes them).
    """

    def __init__(self, shards: list[Any]) -> None:
        self._shards = shards
        self._busy = [0] * len(shards)
        self._lock = threading.Lock()  # the sync twin's threads; never held across a wait

    @classmethod
    def of(
        cls, lib: ModuleType, *, verify: ssl.SSLContext, limits: Any, shards: int = SHARDS
    ) -> AsyncShardedTransport:
        """``shards`` of ``lib``'s own HTTP transport sharing ``limits`` between them."""

        def share(total: int | None) -> int | None:
            return None if total is None else -(-total // shards)

        each = lib.Limits(
            max_connections=share(limits.max_connections),
            max_keepalive_connections=share(limits.max_keepalive_connections),
            keepalive_expiry=limits.keepalive_expiry,
        )
        pools = [lib.AsyncHTTPTransport(verify=verify, limits=each) for _ in range(shards)]
        network = async_network_backend(lib)
        if network is not None:  # asyncio's own network layer (see _asyncio_network.py)
            for pool in pools:
                pool._pool._network_backend = network
        return cls(pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool with the fewest requests in flight."""
        with self._lock:
            busy = self._busy
            shard = busy.index(min(busy))
            busy[shard] += 1
        try:
            response: httpx.Response = await self._shards[shard].handle_async_request(request)
            return response
        finally:
            with self._lock:
                self._busy[shard] -= 1

    async def aclose(self) -> None:
        """Close every pool."""
        for shard in self._shards:
            await shard.aclose()


def default_async_client() -> AsyncHTTPClient:
    """The pool we make when the caller gives no ``http_client``: httpx2's when installed."""
    lib = library.preferred()
    verify = _shared_ssl_context(lib)
    limits = lib.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    client: AsyncHTTPClient = lib.AsyncClient(
        verify=verify,
        limits=limits,
        transport=AsyncShardedTransport.of(lib, verify=verify, limits=limits),
    )
    return client


class AsyncPool(Protocol):
    """What the request loop sends through: an HTTP pool or an in-process server."""

    batching_refused: bool

    @property
    def owned(self) -> bool: ...

    @property
    def is_closed(self) -> bool: ...

    def refuse_batching(self, where: str) -> None: ...

    def callers_default_headers(self) -> list[tuple[bytes, bytes]] | None: ...

    async def send(self, request: WireRequest) -> HTTPResponse:
        """Send ``request`` and read the whole answer (raises what the transport raises)."""
        ...

    async def aclose(self) -> None:
        """Close what the pool holds; idempotent."""
        ...


_EMPTY_STREAM = httpx.ByteStream(b"")


class AsyncInProcessPool(PoolCore):
    """A server in this process (the local ChatarminOS) as a transport: ``answer`` takes the
    encoded request as the wire would carry it; no socket, no httpx request."""

    def __init__(self, answer: InProcessAnswer) -> None:
        self.answer = answer

    async def send(self, request: WireRequest) -> httpx.Response:
        """Have the server answer ``request``; the answer is complete already."""
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        raw = self.answer(request.method, request.target, request.headers, request.content)
        response = httpx.Response(raw.status, headers=raw.headers, stream=_EMPTY_STREAM)
        response._content = raw.body  # nothing for httpx to read
        return response

    async def aclose(self) -> None:
        """Stop answering; idempotent."""
        self._closed = True


class AsyncHTTPPool(HTTPPoolCore[AsyncHTTPClient]):
    """The httpx or httpx2 client one API client (and its ``with_options`` copies) sends
    through."""

    _default_client = staticmethod(default_async_client)
    _current_loop = staticmethod(current_loop)

    async def send(self, wire: WireRequest) -> HTTPResponse:
        """Send ``wire`` and read the whole answer.

        Raises the client library's exceptions, :class:`BodyDecodingError` for a body that
        cannot be decoded, and :class:`ChatarminOSError` when the pool is closed.
        """
        client = self.client()
        lib = library.of(client) or httpx
        plain = self._owned or is_plain(client)
        direct = self._direct_road(client, wire.base_url) if plain else None
        response: HTTPResponse
        if direct is not None:
            response = await direct(wire)
        elif plain:
            request: Any = wire.build(lib)
            transport = client._transport_for_url(request.url)
            response = await transport.handle_async_request(request)
            response.request = request
        else:
            # Your client's default params and cookies join the request as build_request does.
            request = wire.build(lib)
            request = client.build_request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                extensions=request.extensions,
            )
            response = await client.send(request, stream=True)
        try:
            await response.aread()
        except lib.DecodingError as exc:
            raise BodyDecodingError(response) from exc
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        """Close our pool (a caller's ``http_client`` stays open); idempotent."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owned and self._loop is current_loop():
            await client.aclose()
