"""An httpx transport sending through aiohttp, and ``DefaultAioHttpClient`` using it.

``AsyncChatarminOS(http_client=DefaultAioHttpClient())`` sends every call through aiohttp's
connection pool instead of httpcore's, which at many concurrent calls is several times
faster. Everything above the transport stays httpx: the client's headers, redirects,
cookies, the decoding of gzip/deflate/brotli bodies (aiohttp hands the body over as it came)
and the exceptions, so the SDK's retries and error mapping work exactly as with httpx's own
transport:

* connect timeout: ``ConnectTimeout``; no free connection within ``pool``: ``PoolTimeout``;
  refused, DNS, TLS handshake or certificate: ``ConnectError`` (all three: never sent);
* no answer within the read timeout: ``ReadTimeout``;
* server closed without (all of) an answer, or a malformed answer: ``RemoteProtocolError``;
* a proxy refusing the tunnel: ``ProxyError``; a socket error once connected: ``ReadError``;
  not an http(s) URL: ``UnsupportedProtocol``.

Timeouts: httpx's ``connect`` is aiohttp's ``sock_connect`` and ``read`` is ``sock_read``;
``pool`` bounds the wait for a free connection when ``max_connections`` are busy (the
transport caps the requests in flight itself, so this is httpx's ``PoolTimeout``); aiohttp
has no write timeout (request bodies here are small). The whole answer is read
before ``handle_async_request`` returns: meant for API calls, not for streaming downloads.

aiohttp runs on asyncio only: under trio the transport refuses with a
:class:`~chatarmin_os.ConfigurationError`. Its ``ClientSession`` is made on first use inside
the running event loop, made again under another event loop (``asyncio.run`` twice) and in
a child made by ``os.fork()`` (the parent's connections are left to the parent, never
closed from the child). A session is closed by :meth:`AioHttpTransport.aclose` or, when the
loop it belongs to ends through ``asyncio.run`` / ``asyncio.Runner``, with that loop.
Proxies from the environment go through httpx's own transport (httpx mounts them).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncGenerator, Callable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

import httpx

try:
    import aiohttp
    import yarl
except ImportError as _error:
    raise ImportError(
        'DefaultAioHttpClient needs aiohttp: pip install "chatarmin-os[aiohttp]"'
    ) from _error

from ._exceptions import ConfigurationError
from ._fork import register as reset_after_fork

if TYPE_CHECKING:
    from ._client.request import WireRequest

__all__ = ["DEFAULT_LIMITS", "AioHttpTransport", "DefaultAioHttpClient"]

DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=4.0
)
"""As the SDK's own pool: idle connections are dropped before servers' 5 s keep-alive ends."""

# What aiohttp would add to a request that lacks it; httpx decides every header itself.
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

_Mapping = tuple[type[BaseException], type[httpx.TransportError]]


def _exception_map() -> tuple[_Mapping, ...]:
    """aiohttp's exceptions and httpx's, most specific first (first match wins)."""
    own: list[_Mapping] = []
    # aiohttp >= 3.10 tells connect timeouts from read timeouts; before, both were
    # ServerTimeoutError, raised only once the request had been written (so: ReadTimeout).
    connection_timeout = getattr(aiohttp, "ConnectionTimeoutError", None)
    if connection_timeout is not None:
        own.append((connection_timeout, httpx.ConnectTimeout))
    non_http = getattr(aiohttp, "NonHttpUrlClientError", None)
    if non_http is not None:
        own.append((non_http, httpx.UnsupportedProtocol))
    return (
        *own,
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
        (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
        (aiohttp.ClientHttpProxyError, httpx.ProxyError),
        (aiohttp.ClientConnectorError, httpx.ConnectError),
        (aiohttp.ServerFingerprintMismatch, httpx.ConnectError),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
        (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
        (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
        (aiohttp.ClientConnectionError, httpx.ReadError),
        (asyncio.TimeoutError, httpx.ReadTimeout),
        (OSError, httpx.ReadError),
        (aiohttp.ClientError, httpx.TransportError),
    )


_EXCEPTIONS = _exception_map()


def _httpx_error(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    for source, target in _EXCEPTIONS:
        if isinstance(exc, source):
            return target(str(exc) or type(exc).__name__, request=request)
    raise AssertionError("unmapped") from exc  # pragma: no cover - callers pass mapped ones


_MAPPED: tuple[type[BaseException], ...] = tuple(source for source, _ in _EXCEPTIONS)


class _AnswerResponse(httpx.Response):
    """An ``httpx.Response`` of an aiohttp answer whose ``request`` is made only when read.

    The SDK's direct road (:meth:`AioHttpTransport.send_wire`) sends an encoded request
    without an ``httpx.Request``; most answers never need one (an error, a raw response or
    ``response.url`` does), so it is built from the wire request on first use.
    """

    _wire: WireRequest | None = None

    @property
    def request(self) -> httpx.Request:
        """The request this answers (built from the SDK's encoded request when first read)."""
        if self._request is None and self._wire is not None:
            self._request = self._wire.sent
        return httpx.Response.request.fget(self)  # type: ignore[attr-defined, no-any-return]

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


def _headers(raw: Sequence[tuple[bytes, bytes]]) -> httpx.Headers:
    """``httpx.Headers(raw)`` for aiohttp's raw header pairs (bytes already: nothing to
    check), without normalising each name and value through httpx's helpers."""
    headers = httpx.Headers()
    headers._list = [(name, name.lower(), value) for name, value in raw]
    if b"".join(chain.from_iterable(raw)).isascii():
        headers.encoding = "ascii"  # what httpx would work out on the first lookup
    return headers


def _response(
    answer: aiohttp.ClientResponse, body: bytes, request: httpx.Request | WireRequest
) -> httpx.Response:
    """The ``httpx.Response`` of an aiohttp answer read whole; ``request`` is the httpx
    request it answers, or the SDK's encoded one (an ``httpx.Request`` is then made only
    if asked for). A compressed body is decoded by httpx when ``aread()`` is called; any
    other is read and closed already (``aread()`` and ``aclose()`` have nothing to do)."""
    version = answer.version
    built = request if isinstance(request, httpx.Request) else None
    response = _AnswerResponse(
        answer.status,
        stream=httpx.ByteStream(body),
        request=built,
        extensions={
            "http_version": f"HTTP/{version.major}.{version.minor}".encode()
            if version is not None
            else b"HTTP/1.1",
            "reason_phrase": (answer.reason or "").encode(),
        },
    )
    if built is None:
        response._wire = request  # type: ignore[assignment]
    response.headers = _headers(answer.raw_headers)
    if "content-encoding" not in answer.headers:
        response._content = body  # nothing to decode: read already
        response.is_stream_consumed = response.is_closed = True
    return response


_orphans: list[object] = []
"""Sessions of a forked-away parent or of a loop that ended without closing them: kept,
never closed nor collected here (closing could touch the parent's sockets; collecting
would warn from a dead loop)."""


async def _closed_with_loop(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Started once in the session's loop; ``asyncio.run``/``Runner`` finalises unfinished
    async generators before closing their loop, which closes the session there."""
    try:
        yield
    finally:
        await session.close()


class AioHttpTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` sending through an ``aiohttp.ClientSession``.

    ``verify``, ``cert`` and ``trust_env`` choose the TLS context as httpx does; ``limits``
    caps the open connections (``max_connections``) and how long an idle one is kept
    (``keepalive_expiry``). The session is the transport's own, made lazily per event loop
    and per process; close it with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        local_address: str | None = None,
    ) -> None:
        self._verify = verify
        self._cert = cert
        self._trust_env = trust_env
        self._limits = limits
        self._local_address = local_address
        self._ssl: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        self._slots: asyncio.Semaphore | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        self._last_headers: tuple[httpx.Headers, list[tuple[str, str]]] | None = None
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        if self._session is not None:
            _orphans.append((self._session, self._closer))
        self._session = self._loop = self._closer = self._slots = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # loading the CA bundle takes a while: only once, when needed
            self._ssl = httpx.create_ssl_context(
                verify=self._verify, cert=self._cert, trust_env=self._trust_env
            )
        return self._ssl

    async def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        old, closer = self._session, self._closer
        if old is not None and not old.closed:
            # Another loop's connections can be neither used nor closed from this one.
            _orphans.append((old, closer))
        limits = self._limits
        # Requests in flight are capped here (the pool timeout is httpx's: waiting for a
        # free connection only); aiohttp opens a connection for each one it is given.
        self._slots = asyncio.Semaphore(limits.max_connections) if limits.max_connections else None
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=0,
            keepalive_timeout=limits.keepalive_expiry or 0,
            local_addr=(self._local_address, 0) if self._local_address else None,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,  # httpx decodes, as with its own transport
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            timeout=aiohttp.ClientTimeout(),
            trust_env=False,  # httpx mounts the environment's proxies
        )
        if hasattr(session, "_retry_connection"):
            # aiohttp would resend a GET whose connection closed unanswered, once, at once;
            # as with httpx, that is the SDK's retry policy's to decide (and to count).
            session._retry_connection = False
        self._session, self._loop = session, loop
        self._closer = _closed_with_loop(session)
        await self._closer.__anext__()
        return session

    def _timeout(self, extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
        given = extensions.get("timeout") or {}
        key = (given.get("connect"), given.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read = key
            timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read)
            if len(self._timeouts) < 64:
                self._timeouts[key] = timeout
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read the whole answer (see the module for errors, timeouts)."""
        try:
            content: bytes | None = request.content
        except httpx.RequestNotRead:
            content = await request.aread()
        answer, body = await self._exchange(
            request.method,
            str(request.url),
            request.headers.multi_items(),
            content,
            request.extensions,
            lambda: request,
        )
        return _response(answer, body, request)

    def _items_of(self, headers: httpx.Headers) -> list[tuple[str, str]]:
        """``headers.multi_items()``, kept for the last headers object seen: the SDK sends the
        same (never changed) headers object call after call."""
        last = self._last_headers
        if last is not None and last[0] is headers:
            return last[1]
        items = headers.multi_items()
        self._last_headers = (headers, items)
        return items

    async def send_wire(self, wire: WireRequest) -> httpx.Response:
        """Send the SDK's encoded request without making an ``httpx.Request`` of it first
        (the client's pool takes this road when it would send straight to this transport:
        see ``_async/_http.py``); the answer is read whole (a compressed one is decoded by
        ``aread()``)."""
        answer, body = await self._exchange(
            wire.method,
            wire.url_text,
            self._items_of(wire.headers),
            wire.content,
            wire.extensions,
            lambda: wire.sent,
        )
        return _response(answer, body, wire)

    async def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        content: bytes | None,
        extensions: dict[str, Any],
        sent: Callable[[], httpx.Request],
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Send one request through the session; its answer and whole body. ``sent`` gives
        the ``httpx.Request`` an error names."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigurationError(
                "DefaultAioHttpClient (aiohttp) runs on asyncio only; under trio use "
                "the default http client."
            ) from None
        session = self._session
        if session is None or loop is not self._loop or session.closed:
            session = await self._session_for(loop)
        slots = self._slots
        if slots is not None:
            if slots.locked():
                pool = (extensions.get("timeout") or {}).get("pool")
                try:
                    await asyncio.wait_for(slots.acquire(), pool)
                except asyncio.TimeoutError:
                    raise httpx.PoolTimeout("No free connection in time", request=sent()) from None
            else:
                await slots.acquire()  # free: at once
        try:
            async with session.request(
                method,
                yarl.URL(url, encoded=True),  # encoded already
                headers=headers,
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(extensions),
                server_hostname=extensions.get("sni_hostname"),
                ssl=self._ssl_context() if url.startswith("https:") else True,
            ) as answer:
                body = await answer.read()
        except _MAPPED as exc:
            raise _httpx_error(exc, sent()) from exc
        finally:
            if slots is not None:
                slots.release()
        return answer, body

    async def aclose(self) -> None:
        """Close the session (when it belongs to the running loop); idempotent."""
        session, closer, loop = self._session, self._closer, self._loop
        self._session = self._closer = self._loop = None
        if session is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop and closer is not None:
            await closer.aclose()
        elif not session.closed:
            _orphans.append((session, closer))


class DefaultAioHttpClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` sending through aiohttp (:class:`AioHttpTransport`).

    Pass it as ``AsyncChatarminOS(http_client=DefaultAioHttpClient())`` for the fastest
    calls over HTTP on asyncio. Takes every ``httpx.AsyncClient`` argument; ``limits``
    defaults to the SDK's pool (100 connections, idle ones kept 4 s), and a ``transport``
    you give replaces aiohttp. Close it (``await client.aclose()`` or ``async with``) when
    done.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
        **kwargs: Any,
    ) -> None:
        if transport is None:
            transport = AioHttpTransport(
                verify=verify, cert=cert, trust_env=trust_env, limits=limits
            )
        if cert is not None:
            kwargs["cert"] = cert
        super().__init__(
            verify=verify, trust_env=trust_env, limits=limits, transport=transport, **kwargs
        )
