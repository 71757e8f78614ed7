"""The local ChatarminOS over real HTTP on 127.0.0.1, in a background thread of the test process.

Standard library only (``http.server``, no uvicorn): each request goes through the local
server's tRPC handler, :func:`chatarmin_os.local.protocol.handle`, after the
:class:`~chatarmin_os.testing.Faults` had their say. For code under test that builds its own
client from ``OS_API_KEY`` and ``CHATARMIN_OS_BASE_URL``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

from ..local.engine import LocalEngine
from ..local.protocol import (
    REQUEST_ID_HEADER,
    ServerOptions,
    ServerTransformer,
    TRPCHandler,
    new_request_id,
)
from ._faults import Fault, Faults, request_summary_of
from ._local import LocalChatarminOS

__all__ = ["ChatarminOSServer", "LocalHTTPServer"]

_POLL = 0.02  # how often a held (timed-out) answer checks whether the client left


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, owner: LocalHTTPServer, address: tuple[str, int]) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet when a client went away mid-answer (it timed out, or the test ended)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as production servers do
    server: _Server
    _request_id: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the engine, not an access log."""

    def _serve(self) -> None:
        owner = self.server.owner
        raw_path, _, query = self.path.partition("?")
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        summary = (
            request_summary_of(owner.prefix, self.command, self.path, body)
            if owner.faults.armed
            else None
        )
        fault = owner.faults.take(summary[0]) if summary is not None else None
        if fault is not None and summary is not None and fault.kind == "status":
            status, headers, content = fault.answer(*summary)
            self._send(status, headers, content)
            return
        if fault is None or fault.applied:
            response = owner.handler.handle(
                self.command,
                raw_path,
                query,
                {name.lower(): value for name, value in self.headers.items()},
                body,
            )
            if fault is None:
                self._send(response.status, response.headers, response.body)
                return
        assert fault is not None
        if fault.kind == "timeout":
            self._hold(fault)
        self.close_connection = True  # the answer is dropped: close without one

    def _hold(self, fault: Fault) -> None:
        """Keep the answer back until the client leaves, the server stops or ``hold`` passes."""
        deadline = time.monotonic() + fault.hold
        stopping = self.server.owner.stopping
        while not stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], _POLL)
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return  # the client closed the connection (it timed out)
                except OSError:
                    return

    def send_response(self, code: int, message: str | None = None) -> None:
        """The status line, then the answer's ``x-request-id`` (a new one for the answers
        ``http.server`` gives itself, such as a malformed request's 400)."""
        super().send_response(code, message)
        self.send_header(REQUEST_ID_HEADER, self._request_id or new_request_id())
        self._request_id = None

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._request_id = headers.get(REQUEST_ID_HEADER)
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", REQUEST_ID_HEADER):
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


class LocalHTTPServer:
    """Serve ``engine`` over HTTP as ``options`` say, ``faults`` applied first.

    ``start()`` binds ``host`` (127.0.0.1) on ``port`` (0: a free one) and serves from a
    background thread; ``stop()`` closes every connection and the socket.
    """

    def __init__(
        self,
        engine: LocalEngine,
        faults: Faults,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ServerOptions | None = None,
    ) -> None:
        self.engine = engine
        self.faults = faults
        self.handler = TRPCHandler(engine, options)
        """The tRPC handling, one for every request."""
        self.options = self.handler.options
        """How it speaks tRPC (:class:`~chatarmin_os.local.ServerOptions`)."""
        self.prefix = self.options.prefix
        self.stopping = threading.Event()
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (after ``start()``)."""
        if self._server is None:
            raise RuntimeError("the server is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether it is serving."""
        return self._server is not None

    def start(self) -> None:
        """Bind and serve in a background thread (idempotent)."""
        if self._server is not None:
            return
        self.stopping.clear()
        self._server = _Server(self, self._address)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"chatarmin-os-local-http:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the open connections and the socket (idempotent)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None


class ChatarminOSServer(LocalChatarminOS):
    """A :class:`LocalChatarminOS` served over real HTTP on 127.0.0.1 (a background thread).

    Same seeding and assertion helpers, same :attr:`faults`, same engine as ``local`` (a
    fresh one when omitted); its :meth:`client` / :meth:`async_client` talk HTTP to it.
    :attr:`base_url` and :attr:`api_key` are what code that builds its own client needs
    (:meth:`environ` gives them as ``OS_API_KEY`` / ``CHATARMIN_OS_BASE_URL``).

    Example::

        with ChatarminOSServer() as server:
            os.environ.update(server.environ())
            ...  # your app, making ChatarminOS() from the environment
    """

    def __init__(
        self,
        local: LocalChatarminOS | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        transformer: ServerTransformer | None = None,
        options: ServerOptions | None = None,
    ) -> None:
        """Serve ``local`` (a fresh one when omitted) on ``host``:``port`` (0: a free one).

        ``options`` (a :class:`~chatarmin_os.local.ServerOptions`) set up its tRPC handling;
        ``transformer``, when given, replaces the one in ``options``.
        """
        if transformer is not None:
            options = (options or ServerOptions()).replace(transformer=transformer)
        shared = local if local is not None else LocalChatarminOS()
        super().__init__(shared.engine, api_key=shared.api_key)
        self.local = shared
        """The in-process :class:`LocalChatarminOS` this server shares engine and faults with."""
        self.faults = shared.faults
        self.retry_waits = shared.retry_waits
        self._owns_local = local is None
        self._http = LocalHTTPServer(
            shared.engine, shared.faults, host=host, port=port, options=options
        )

    def __repr__(self) -> str:
        state = self.base_url if self._http.running else "stopped"
        return f"<ChatarminOSServer {state}>"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self._http.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the server's root."""
        return self._http.url

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/api/v1``: the ``base_url`` / ``CHATARMIN_OS_BASE_URL``."""
        return self._http.url + self._http.prefix

    def environ(self) -> dict[str, str]:
        """``{"OS_API_KEY": ..., "CHATARMIN_OS_BASE_URL": ...}`` for code that reads them."""
        return {"OS_API_KEY": self.api_key, "CHATARMIN_OS_BASE_URL": self.base_url}

    def start(self) -> ChatarminOSServer:
        """Start serving (idempotent); returns itself."""
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving and close its connections (the data stays; ``start()`` again)."""
        self._http.stop()

    def close(self) -> None:
        """Stop, close the clients made here, and the engine when this server made it."""
        self.stop()
        for client in self._clients:
            client.close()
        if self._owns_local:
            self.local.close()

    def __enter__(self) -> ChatarminOSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _http_client(self) -> httpx.Client:
        return httpx.Client()

    def _async_http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()
