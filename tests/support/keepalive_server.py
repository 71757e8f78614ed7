"""A tiny HTTP/1.1 keep-alive server whose idle timeout runs on a clock the test moves.

It models the race of a real server closing an idle connection: when a request arrives on a
connection that has been idle for ``idle_timeout`` seconds or more (by the test's clock), the
server closes the connection without answering, as uvicorn or Node.js do when their
keep-alive timer fires just as the request comes in. Any other request gets a tRPC answer.
The same clock is handed to httpcore (``time.monotonic`` of its HTTP/1.1 module), so the
client's pool expiry and the server's timeout are measured on one time line.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from types import TracebackType

from tests.support.canned import UNLIMITED_USAGE_ANSWER

ANSWER = json.dumps(UNLIMITED_USAGE_ANSWER).encode()


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class KeepAliveServer:
    """Serves on 127.0.0.1 (``url``); counts connections, answered and dropped requests."""

    def __init__(self, clock: FakeClock, idle_timeout: float) -> None:
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.connections = 0
        self.answered = 0
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/api/v1"
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> KeepAliveServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() alone does not wake a thread blocked in accept(); shutdown() does (Linux).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        last_answer = self.clock.monotonic()
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[length:]
                if self.clock.monotonic() - last_answer >= self.idle_timeout:
                    with self._lock:
                        self.dropped += 1
                    return  # the keep-alive timer fired: close, answer nothing
                # The idle timer starts now, before the client can have the answer (and the
                # test move the clock on).
                last_answer = self.clock.monotonic()
                with self._lock:
                    self.answered += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(ANSWER)}\r\n\r\n".encode()
                    + ANSWER
                )
