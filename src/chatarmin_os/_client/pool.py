"""What every transport of a client shares: the state the request loop reads without waiting.

A twin's pool (``_async/_http.py``: the HTTP pool, the in-process pool) derives from
:class:`PoolCore` and adds ``send(request) -> response`` and ``aclose()``/``close()``. An HTTP
pool's client is httpx's or httpx2's (see ``_client.library``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx

from .._exceptions import ChatarminOSError
from .._fork import register as reset_after_fork
from .._logs import logger
from .._types import AsyncHTTPClient, HTTPClient
from . import library

__all__ = ["HTTPPoolCore", "InProcessAnswer", "InProcessResponse", "PoolCore", "is_plain"]

_H = TypeVar("_H", AsyncHTTPClient, HTTPClient)


class InProcessResponse(Protocol):
    """What an in-process server answers: status, headers and the whole body."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...


class InProcessAnswer(Protocol):
    """An in-process server's direct entry point (``LocalTransport.answer``): the encoded
    request's method, target relative to the base URL, headers and body."""

    def __call__(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> InProcessResponse: ...


class PoolCore:
    """The non-waiting half of a pool: ownership, closed state, the server's batching answer."""

    _owned: bool = True
    _closed: bool = False
    batching_refused: bool = False
    """Whether the server answered a batch "Batching is not enabled on the server"."""

    @property
    def owned(self) -> bool:
        """Whether the pool is ours (made here) rather than the caller's ``http_client``."""
        return self._owned

    @property
    def is_closed(self) -> bool:
        """Whether the pool was closed."""
        return self._closed

    def refuse_batching(self, where: str) -> None:
        """Send calls one by one from now on (logged once per pool)."""
        if not self.batching_refused:
            self.batching_refused = True
            logger.warning(
                "The server at %s does not take tRPC batches; sending calls one by one.", where
            )

    def callers_default_headers(self) -> list[tuple[bytes, bytes]] | None:
        """The default headers of your ``http_client`` (``None`` for a pool of ours)."""
        return None


def is_plain(client: Any) -> bool:
    """Whether sending straight to the transport does all ``client.send`` would do."""
    try:
        hooks = client._event_hooks
        return bool(
            client._auth is None
            and not hooks["request"]
            and not hooks["response"]
            and not client.follow_redirects
            and not client._params
            and not _has_cookies(client._cookies.jar)
        )
    except (AttributeError, KeyError, TypeError):  # another library: take the public road
        return False


def _has_cookies(jar: Any) -> bool:
    """Whether a cookie jar may hold a cookie: the stdlib ``CookieJar``'s own dict looked at
    (``len()`` walks every cookie); a jar emptied cookie by cookie still counts (the
    client's ``send`` is then used, which is always right)."""
    cookies = getattr(jar, "_cookies", None)
    return bool(cookies) if isinstance(cookies, dict) else len(jar) > 0


class HTTPPoolCore(PoolCore, Generic[_H]):
    """The non-waiting half of an HTTP pool: whose client (httpx or httpx2) it is, which to send
    through now (ours is made on first use, and again after a fork or under another event
    loop). A twin names ``_default_client`` (how ours is made) and ``_current_loop``."""

    _default_client: ClassVar[Any]  # staticmethod: () -> our own client (httpx2 or httpx)
    _current_loop: ClassVar[Any]  # staticmethod: () -> the running event loop (or None)

    def __init__(
        self, http_client: _H | None = None, *, factory: Callable[[], _H] | None = None
    ) -> None:
        self._owned = http_client is None
        self._factory: Callable[[], _H] = factory or type(self)._default_client
        self._client: _H | None = http_client
        self._loop: object | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._road: tuple[_H, httpx.URL, Callable[[Any], Any] | None] | None = None
        reset_after_fork(self)

    @property
    def is_closed(self) -> bool:
        """Whether the pool was closed (by us, or the caller closed their client)."""
        if self._closed:
            return True
        client = self._client
        return client is not None and not self._owned and client.is_closed

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        if self._owned:
            self._client = None  # the parent's sockets: leave them to the parent

    def client(self) -> _H:
        """The client to send through now, made (again) when ours is missing or stale."""
        if self._closed:
            raise ChatarminOSError("This client is closed; make a new one to go on.")
        client = self._client
        if not self._owned:
            assert client is not None
            if client.is_closed:
                raise ChatarminOSError(
                    "The http_client you passed is closed; the client cannot send with it."
                )
            return client
        loop = type(self)._current_loop()
        if client is None or loop is not self._loop:
            with self._lock:
                if self._client is None or loop is not self._loop:
                    # Another loop's connections cannot be used (nor closed) from this one.
                    self._client = self._factory()
                    self._loop = loop
                client = self._client
        return client

    def _direct_road(self, client: _H, base: httpx.URL) -> Callable[[Any], Any] | None:
        """The ``send_wire`` of the transport ``client`` sends ``base``'s requests to, when it
        has one (:class:`~chatarmin_os.DefaultAioHttpClient`'s transport): it takes the
        encoded request as it is, with no ``httpx.Request`` made of it first. Looked up
        once per client (a transport is chosen by scheme, host and port only)."""
        known = self._road
        if known is not None and known[0] is client and known[1] is base:
            return known[2]
        road = None
        if library.of(client) is httpx:  # the road's transport is httpx's kind
            own: Any = client
            road = getattr(own._transport_for_url(base), "send_wire", None)
        self._road = (client, base, road)
        return road

    def callers_default_headers(self) -> list[tuple[bytes, bytes]] | None:
        """The default headers of your ``http_client`` (``None`` for our own pool).

        Our own pool's defaults are ``OWN_POOL_HEADERS`` (see ``_client.core``), built into a
        client's headers once; yours may change between calls, so they are read on every call.
        """
        if self._owned:
            return None
        raw: list[tuple[bytes, bytes]] = self.client().headers.raw
        return raw
