"""Serve a :class:`~chatarmin_os.local.asgi.TRPCApp` on uvicorn, fast and hardened.

uvicorn runs the server: the socket, the event loop (uvloop when installed), signals and the
graceful stop. The HTTP/1.1 side is :class:`HTTPProtocol`, a small protocol on the
``httptools`` parser that answers each request as soon as it is complete, synchronously,
with one write — no ASGI task, no per-request event, no second write for the body. It adds
what a test server facing arbitrary clients needs:

* a read deadline: a request must arrive complete (head and body) within ``read_timeout``
  seconds of the connection opening or of the previous answer; a half-sent request then gets
  ``408 TIMEOUT``, an idle connection is closed;
* a request head (request line and headers) of at most :data:`MAX_HEAD` bytes, else
  ``413 PAYLOAD_TOO_LARGE``; a body over the handler's ``max_body`` is refused with 413 as
  soon as its ``Content-Length`` (or its size so far) says so; an unparsable request gets
  ``400 BAD_REQUEST`` — all as tRPC error envelopes, and the connection is closed (after a
  linger: what the client still sends is dropped for up to :data:`LINGER` seconds, so it
  reads the answer instead of a reset);
* back-pressure: a client that does not read its answers stops being read from;
* a graceful stop on SIGTERM / Ctrl-C within about a second: no new connections, idle ones
  closed, the call in flight finishes (each is one transaction), the rest of a running batch
  is not started, a request still arriving is dropped after :data:`GRACEFUL_SHUTDOWN`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from types import FrameType
from typing import Any, cast

import httptools
import uvicorn

from ._request_id import new_request_id
from .asgi import TRPCApp
from .protocol import HTTPResponse, answer_headers, error_body

__all__ = [
    "GRACEFUL_SHUTDOWN",
    "LINGER",
    "MAX_HEAD",
    "HTTPProtocol",
    "build_server",
    "listen_socket",
]

MAX_HEAD = 64 * 1024
"""The largest request head (request line plus headers) accepted, in bytes."""

GRACEFUL_SHUTDOWN = 1.0
"""Seconds a stopping server gives a request still arriving before dropping it."""

LINGER = 2.0
"""Seconds a connection whose request was refused stays open to drop what its client still
sends, so the client reads the answer instead of a reset."""

_REASONS = {
    200: b"OK",
    204: b"No Content",
    207: b"Multi-Status",
    400: b"Bad Request",
    401: b"Unauthorized",
    402: b"Payment Required",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    412: b"Precondition Failed",
    413: b"Payload Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    428: b"Precondition Required",
    429: b"Too Many Requests",
    499: b"Client Closed Request",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}

access_logger = logging.getLogger("uvicorn.access")
error_logger = logging.getLogger("uvicorn.error")


class _Refuse(Exception):
    """Stop reading this connection: answer ``status`` with a tRPC error, then close."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 for :class:`TRPCApp`: keep-alive, pipelining, ``Expect: 100-continue``, HEAD.

    Made by uvicorn for each connection (``uvicorn.Config(http=...)``); see the module
    docstring for the limits it enforces. Subclassed by :func:`build_server` to bind the app
    and the options.
    """

    app: TRPCApp
    read_timeout: float = 10.0
    access_log: bool = False

    def __init__(self, config: Any, server_state: Any, app_state: Any = None, **_: Any) -> None:
        """Called by uvicorn with its configuration and shared server state."""
        self.server_state = server_state
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._closing = False
        self._lingering = False  # answered and half-closed: dropping what still comes
        self._stopping = False
        self._reading_paused = False
        self._writing_paused = False
        self._in_request = False
        self._reset()

    def _reset(self) -> None:
        self._url = b""
        self._head_size = 0
        self._headers: dict[str, str] = {}
        self._expect_continue = False
        self._body: list[bytes] = []
        self._body_size = 0

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: it has ``read_timeout`` seconds for its first request."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server_state.connections.add(self)
        peer = self.transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone."""
        self.server_state.connections.discard(self)
        self._closing = True
        self._disarm()

    def data_received(self, data: bytes) -> None:
        """Feed the parser; it calls the ``on_*`` methods, which answer complete requests."""
        if self._closing:
            return
        try:
            self.parser.feed_data(data)
        except _Refuse as refusal:
            self._refuse(refusal.status, refusal.code, refusal.message)
        except httptools.HttpParserUpgrade:
            self._close()  # an upgrade (WebSocket, h2c) is not spoken here
        except httptools.HttpParserError as error:
            cause = error.__context__
            if isinstance(cause, _Refuse):  # raised inside a parser callback
                self._refuse(cause.status, cause.code, cause.message)
            else:
                self._refuse(400, "BAD_REQUEST", "Invalid HTTP request received")

    def eof_received(self) -> bool | None:
        """The client finished sending: close once the answers are written."""
        return None

    def pause_writing(self) -> None:
        """The client does not read its answers: stop reading its requests."""
        self._writing_paused = True
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: read again."""
        self._writing_paused = False
        if self.transport is not None and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts."""
        self._in_request = True
        self._reset()

    def on_url(self, url: bytes) -> None:
        """A piece of the request target."""
        self._count(len(url))
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header; only the few the server reads are kept."""
        self._count(len(name) + len(value) + 4)
        lowered = name.lower()
        if lowered == b"authorization" or lowered == b"content-type":
            self._headers[lowered.decode("latin-1")] = value.decode("latin-1")
        elif lowered == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        elif (
            lowered == b"content-length"
            and value.strip().isdigit()
            and int(value) > self.app.handler.max_body
        ):
            self._too_large()

    def on_headers_complete(self) -> None:
        """The head is complete: let a client waiting for ``100 Continue`` send its body."""
        if self._expect_continue and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        """A piece of the body."""
        self._body_size += len(body)
        if self._body_size > self.app.handler.max_body:
            self._too_large()
        self._body.append(body)

    def on_message_complete(self) -> None:
        """The request is complete: answer it now."""
        self._in_request = False
        self._disarm()
        method = self.parser.get_method().decode("ascii", "replace")
        try:
            target = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            raise _Refuse(400, "BAD_REQUEST", "Invalid request target") from None
        path = (target.path or b"/").decode("latin-1")
        query = (target.query or b"").decode("latin-1")
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request_id = new_request_id()
        try:
            answer = self.app.respond(method, path, query, self._headers, body, request_id)
        except Exception:  # a bug: answer it as tRPC does, keep serving
            error_logger.exception(
                "chatarmin-os serve: %s %s failed [%s]", method, path, request_id
            )
            failed = error_body("INTERNAL_SERVER_ERROR", "Internal server error")
            answer = HTTPResponse(500, failed, answer_headers(request_id, failed))
        keep_alive = self.parser.should_keep_alive() and not self._stopping
        status = answer.status
        content = b"" if method == "HEAD" else answer.body
        self._write(status, content, len(answer.body), keep_alive, request_id)
        self.server_state.total_requests += 1
        if self.access_log:
            self._log(method, status, request_id)
        self._reset()
        if not keep_alive:
            self._close()
        else:
            self._arm()

    # -- uvicorn -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """uvicorn stops: close when idle, after the answer in progress, or soon at most."""
        self._stopping = True
        if not self._in_request:
            self._close()
        else:
            self.loop.call_later(GRACEFUL_SHUTDOWN, self._close)

    # -- ours ----------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_HEAD:
            message = f"Request line and headers exceed {MAX_HEAD} bytes"
            raise _Refuse(413, "PAYLOAD_TOO_LARGE", message)

    def _too_large(self) -> None:
        message = f"Request body exceeds the limit of {self.app.handler.max_body} bytes"
        raise _Refuse(413, "PAYLOAD_TOO_LARGE", message)

    def _write(
        self, status: int, body: bytes, length: int, keep_alive: bool, request_id: str
    ) -> None:
        if self.transport is None or self._closing:
            return
        head = b"HTTP/1.1 %d %s\r\nx-request-id: %s\r\n" % (
            status,
            _REASONS.get(status, b"Unknown"),
            request_id.encode("ascii"),
        )
        if length:
            head += b"content-type: application/json\r\ncontent-length: %d\r\n" % length
        elif status != 204:
            head += b"content-length: 0\r\n"
        if not keep_alive:
            head += b"connection: close\r\n"
        self.transport.write(head + b"\r\n" + body)

    def _refuse(self, status: int, code: str, message: str) -> None:
        body = error_body(code, message)
        request_id = new_request_id()
        self._write(status, body, len(body), False, request_id)
        if self.access_log:
            self._log(
                self.parser.get_method().decode("ascii", "replace") or "-", status, request_id
            )
        self._linger()

    def _log(self, method: str, status: int, request_id: str) -> None:
        """One access-log line; the request id follows the client's address (uvicorn's
        access formatter takes exactly these five values)."""
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            f"{self.client} {request_id}",
            method,
            self._url.decode("latin-1")[:2000],
            self.parser.get_http_version(),
            status,
        )

    def _linger(self) -> None:
        """Close a connection whose client may still be sending (a refused request): end
        our side after the answer, drop whatever still arrives, and close when the client
        does or after :data:`LINGER` seconds. Closing at once with unread data makes the
        kernel reset the connection, and a client still sending may lose the answer."""
        transport = self.transport
        if self._closing or transport is None:
            return
        if not transport.can_write_eof():
            self._close()
            return
        self._closing = self._lingering = True
        self._disarm()
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        transport.write_eof()
        self._deadline = self.loop.call_later(LINGER, self._close)

    def _close(self) -> None:
        if self.transport is not None and (not self._closing or self._lingering):
            self._closing = True
            self._lingering = False
            self._disarm()
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self._in_request:
            message = f"The request did not arrive within {self.read_timeout:g} s"
            self._refuse(408, "TIMEOUT", message)
        else:
            self._close()


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a stop was asked for."""

    def __init__(self, config: uvicorn.Config, app: TRPCApp) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._app.handler.stopping = True
        super().handle_exit(sig, frame)


def build_server(
    app: TRPCApp,
    *,
    read_timeout: float,
    log_level: str,
    access_log: bool,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` on :class:`HTTPProtocol`; run it with
    ``server.run(sockets=[sock])``."""
    protocol = type(
        "HTTPProtocol",
        (HTTPProtocol,),
        {"app": app, "read_timeout": read_timeout, "access_log": access_log},
    )
    config = uvicorn.Config(
        app,
        http=protocol,
        ws="none",
        lifespan="off",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN),
        server_header=False,
        date_header=False,
    )
    if access_log:  # one line per request whatever the log level
        access_logger.setLevel(logging.INFO)
    return _Server(config, app)


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn, with ``TCP_NODELAY`` set.

    Made with ``IPPROTO_TCP``, not 0: asyncio only sets ``TCP_NODELAY`` on sockets it knows
    are TCP, and without it every keep-alive request waits ~40 ms (Nagle + delayed ACK).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
