"""httpcore's network layer on asyncio's own transports, for the SDK's own pool under asyncio.

httpcore (httpx's) and httpcore2 (httpx2's) reach the network through a *network backend*;
their default goes through anyio, which on every read and every write enters a cancel scope
for the timeout, yields to the event loop once more (a checkpoint) and asks which async
library runs (sniffio). :class:`AsyncioBackend` does the same work on an
:class:`asyncio.Protocol`: a read that finds data waiting returns it at once, a write that
the socket takes needs no timer, and a timer is set only while a read or a drain waits.

It behaves as httpcore's anyio backend does, exception for exception (``ConnectTimeout``,
``ConnectError``, ``ReadTimeout``, ``ReadError``, ``WriteTimeout``, ``WriteError`` of the
library given), including the check for a dropped idle connection (``is_readable`` asks the
socket with the library's own helper, as its anyio backend does). Used only by the pools the SDK makes itself, only under asyncio
(trio keeps httpcore's own backend), which never connect to a Unix socket; see
``_async/_http.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from types import ModuleType
from typing import Any

__all__ = ["AsyncioBackend"]

_HIGH_WATER = 256 * 1024
"""Bytes received and not yet read past which the socket is not read (until they are)."""


class _Protocol(asyncio.Protocol):
    """The bytes a connection received, and who waits for them or for the socket to drain."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.eof = False
        self.lost: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False  # the socket's write buffer is full
        self.drained: asyncio.Future[None] | None = None
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)
        if self.size > _HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.lost = exc
        self._wake()
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        drained, self.drained = self.drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self, max_bytes: int) -> bytes:
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) > max_bytes:
            self.chunks = [data[max_bytes:]]
            data = data[:max_bytes]
        else:
            self.chunks = []
        self.size -= len(data)
        if self.reading_paused and self.size <= _HIGH_WATER // 4 and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
        return data


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


async def _wait(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], timeout: float | None
) -> None:
    """Await ``future``; ``TimeoutError`` when ``timeout`` seconds pass first."""
    timer = None if timeout is None else loop.call_later(timeout, _expire, future)
    try:
        await future
    finally:
        if timer is not None:
            timer.cancel()


class AsyncioStream:
    """One connection, as httpcore's ``AsyncNetworkStream``."""

    def __init__(self, core: ModuleType, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._core = core
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` received bytes (``b""`` at the end of the stream)."""
        protocol = self._protocol
        if not protocol.chunks and not protocol.eof:
            waiter = protocol.waiter = protocol.loop.create_future()
            try:
                await _wait(protocol.loop, waiter, timeout)
            except TimeoutError:
                raise self._core.ReadTimeout("timed out") from None
        if protocol.chunks:
            return protocol.take(max_bytes)
        if protocol.lost is not None:
            raise self._core.ReadError(str(protocol.lost) or type(protocol.lost).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer`` (waits only while the socket's buffer is full)."""
        if not buffer:
            return
        protocol, transport = self._protocol, self._transport
        if transport.is_closing() or protocol.lost is not None:
            raise self._core.WriteError("the connection is closed")
        transport.write(buffer)
        if protocol.paused:
            drained = protocol.drained = protocol.loop.create_future()
            try:
                await _wait(protocol.loop, drained, timeout)
            except TimeoutError:
                raise self._core.WriteTimeout("timed out") from None
            if protocol.lost is not None or transport.is_closing():
                raise self._core.WriteError(str(protocol.lost or "the connection was closed"))

    async def aclose(self) -> None:
        """Close the connection (what is written still goes out)."""
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncioStream:
        """The same connection over TLS."""
        core, protocol = self._core, self._protocol
        handshake = protocol.loop.start_tls(
            self._transport, protocol, ssl_context, server_hostname=server_hostname
        )
        try:
            transport = await asyncio.wait_for(handshake, timeout)
        except asyncio.TimeoutError as exc:  # TimeoutError itself from Python 3.11
            self._transport.close()
            raise core.ConnectTimeout(str(exc) or "timed out") from exc
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.close()
            raise core.ConnectError(str(exc) or type(exc).__name__) from exc
        assert transport is not None
        protocol.transport = transport
        return AsyncioStream(core, transport, protocol)

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a stream: ``ssl_object``, the addresses, the socket, and
        whether an idle connection has something to read (then it was dropped)."""
        transport = self._transport
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        if info == "is_readable":
            protocol = self._protocol
            if protocol.chunks or protocol.eof or transport.is_closing():
                return True
            # What the library's own backend asks (an end of stream not yet delivered).
            return self._core._utils.is_socket_readable(transport.get_extra_info("socket"))
        return None


class AsyncioBackend:
    """httpcore's ``AsyncNetworkBackend`` on asyncio; ``core`` is httpcore or httpcore2
    (whose exceptions it raises)."""

    def __init__(self, core: ModuleType) -> None:
        self._core = core

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncioStream:
        """A TCP connection (TCP_NODELAY on, as asyncio and uvloop set it)."""
        loop = asyncio.get_running_loop()
        core = self._core
        # Happy Eyeballs as anyio does; asyncio's own loops take it, uvloop's do not.
        options: dict[str, Any] = (
            {"happy_eyeballs_delay": 0.25} if isinstance(loop, asyncio.BaseEventLoop) else {}
        )
        connecting = loop.create_connection(
            lambda: _Protocol(loop),
            host,
            port,
            local_addr=(local_address, 0) if local_address else None,
            **options,
        )
        try:
            transport, protocol = await asyncio.wait_for(connecting, timeout)
        except asyncio.TimeoutError as exc:  # TimeoutError itself from Python 3.11
            raise core.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise core.ConnectError(str(exc) or type(exc).__name__) from exc
        sock: socket.socket = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(core, transport, protocol)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        await asyncio.sleep(seconds)
