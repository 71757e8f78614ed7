"""The SDK's own async pools reach the network through asyncio's transports
(``_asyncio_network.AsyncioBackend``) rather than anyio: the same answers and, error for error,
the same exceptions as httpcore's own anyio backend (each case runs with both, through
httpcore and, when installed, httpcore2)."""

from __future__ import annotations

import asyncio
import importlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
import trio
import trustme

from chatarmin_os import APIConnectionError, APITimeoutError, AsyncChatarminOS
from chatarmin_os._async._http import default_async_client
from chatarmin_os._asyncio_network import AsyncioBackend
from chatarmin_os._sync._http import default_sync_client
from tests.support.canned import UNMETERED_ACCESS_ANSWER

KEY = "os_sk_network"
CORES = ["httpcore"] + (["httpcore2"] if importlib.util.find_spec("httpcore2") else [])


def answer(body: bytes, *, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


ACCESS = answer(httpx.Response(200, json=UNMETERED_ACCESS_ANSWER).content)


class Server:
    """A blocking TCP server in a thread: ``serve(connection)`` handles each connection."""

    def __init__(self, serve: Callable[[socket.socket, Server], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released each time a connection is closed
        self.got = threading.Semaphore(0)  # released by a handler that got its request
        self._serve = serve
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection, self), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def read_head(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return b""
        data += chunk
    return data


def keep_answering(connection: socket.socket, server: Server) -> None:
    with connection:
        while read_head(connection):
            connection.sendall(ACCESS)


def answer_once_then_close(connection: socket.socket, server: Server) -> None:
    read_head(connection)
    connection.sendall(ACCESS)
    connection.shutdown(socket.SHUT_RDWR)
    connection.close()
    server.closed.release()


def never_answer(connection: socket.socket, server: Server) -> None:
    read_head(connection)
    server.closed.acquire()  # until the test ends


def never_read(connection: socket.socket, server: Server) -> None:
    server.closed.acquire()


def reset_mid_answer(connection: socket.socket, server: Server) -> None:
    read_head(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()  # RST


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    running = Server(request.param)
    yield running
    for _ in range(8):
        running.closed.release()
    running.close()


def backends(name: str) -> list[Any]:
    core = importlib.import_module(name)
    return [AsyncioBackend(core), core.AnyIOBackend()]


@pytest.fixture(params=CORES)
def core(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


# --- which pools use it ---------------------------------------------------------------------


async def test_our_async_pools_use_it_under_asyncio() -> None:
    client: Any = default_async_client()
    shards = client._transport._shards
    assert all(isinstance(s._pool._network_backend, AsyncioBackend) for s in shards)
    expected = "httpcore2" if type(client).__module__.startswith("httpx2") else "httpcore"
    assert shards[0]._pool._network_backend._core.__name__ == expected
    await client.aclose()


def test_trio_blocking_code_and_no_loop_keep_the_librarys_own() -> None:
    async def under_trio() -> Any:
        return default_async_client()

    for client in (trio.run(under_trio), default_sync_client(), default_async_client()):
        for shard in client._transport._shards:
            assert not isinstance(shard._pool._network_backend, AsyncioBackend)


# --- through the SDK -------------------------------------------------------------------------


@pytest.mark.parametrize("server", [keep_answering], indirect=True)
async def test_calls_reuse_one_connection(server: Server) -> None:
    async with AsyncChatarminOS(api_key=KEY, base_url=f"http://127.0.0.1:{server.port}") as client:
        for _ in range(3):
            access = await client.features.check(company_id="c1", feature_code="ai_credit")
            assert access.current_usage == 1
    assert server.connections == 1


@pytest.mark.parametrize("server", [keep_answering], indirect=True)
def test_calls_under_uvloop(server: Server) -> None:
    uvloop = pytest.importorskip("uvloop", reason="uvloop does not run on this platform")

    async def main() -> None:
        assert isinstance(
            default_async_client()._transport._shards[0]._pool._network_backend, AsyncioBackend
        )  # type: ignore[attr-defined]
        base_url = f"http://127.0.0.1:{server.port}"
        async with AsyncChatarminOS(api_key=KEY, base_url=base_url, max_retries=0) as client:
            for _ in range(2):
                await client.features.check(company_id="c1", feature_code="ai_credit")

    uvloop.run(main())
    assert server.connections == 1


@pytest.mark.parametrize("server", [answer_once_then_close], indirect=True)
async def test_a_connection_the_server_closed_while_idle_is_not_reused(server: Server) -> None:
    base_url = f"http://127.0.0.1:{server.port}"
    async with AsyncChatarminOS(api_key=KEY, base_url=base_url, max_retries=0) as client:
        for _ in range(3):
            await client.features.check(company_id="c1", feature_code="ai_credit")
            await asyncio.to_thread(server.closed.acquire)  # closed before the next call
    assert server.connections == 3


def first_never_answers(connection: socket.socket, server: Server) -> None:
    if server.connections == 1:
        read_head(connection)
        server.got.release()  # the first request is in
        server.closed.acquire()  # never answered
        return
    keep_answering(connection, server)


@pytest.mark.parametrize("server", [first_never_answers], indirect=True)
async def test_a_call_cancelled_mid_answer_leaves_the_pool_usable(server: Server) -> None:
    base_url = f"http://127.0.0.1:{server.port}"
    async with AsyncChatarminOS(api_key=KEY, base_url=base_url, max_retries=0) as client:
        stuck = asyncio.ensure_future(
            client.features.check(company_id="c1", feature_code="ai_credit")
        )
        await asyncio.to_thread(server.got.acquire)  # waiting for its answer now
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        access = await client.features.check(company_id="c1", feature_code="ai_credit")
    assert access.current_usage == 1
    assert server.connections == 2  # the cancelled call's connection was not reused


@pytest.mark.parametrize("server", [never_answer], indirect=True)
async def test_no_answer_in_time_is_a_timeout(server: Server) -> None:
    base_url = f"http://127.0.0.1:{server.port}"
    async with AsyncChatarminOS(
        api_key=KEY, base_url=base_url, max_retries=0, timeout=0.2
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.features.check(company_id="c1", feature_code="ai_credit")


async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    async with AsyncChatarminOS(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.features.check(company_id="c1", feature_code="ai_credit")
    assert not isinstance(info.value, APITimeoutError)


# --- the backend itself, beside httpcore's own ---------------------------------------------


@pytest.mark.parametrize("which", [0, 1], ids=["asyncio", "anyio"])
async def test_a_large_answer_arrives_whole(core: ModuleType, which: int) -> None:
    big = b"[" + b",".join(b'"%06d"' % i for i in range(150_000)) + b"]"  # ~1.3 MB

    def serve_big(connection: socket.socket, _: Server) -> None:
        with connection:
            read_head(connection)
            connection.sendall(answer(big))

    big_server = Server(serve_big)
    try:
        async with core.AsyncConnectionPool(network_backend=backends(core.__name__)[which]) as pool:
            response = await pool.request("GET", f"http://127.0.0.1:{big_server.port}/big")
        assert response.content == big
    finally:
        big_server.close()


BIG_BODY = b"x" * (32 * 1024 * 1024)  # more than the socket buffers take


@pytest.mark.parametrize(
    ("server", "method", "content", "timeout", "error"),
    [
        (never_answer, "GET", None, {"read": 0.1}, "ReadTimeout"),
        (never_read, "POST", BIG_BODY, {"write": 0.2}, "WriteTimeout"),
        (reset_mid_answer, "GET", None, {}, "ReadError"),
    ],
    ids=["no answer in time", "body not read in time", "reset mid answer"],
    indirect=["server"],
)
@pytest.mark.parametrize("which", [0, 1], ids=["asyncio", "anyio"])
async def test_failures(
    server: Server,
    core: ModuleType,
    which: int,
    method: str,
    content: bytes | None,
    timeout: dict[str, float],
    error: str,
) -> None:
    async with core.AsyncConnectionPool(network_backend=backends(core.__name__)[which]) as pool:
        with pytest.raises(Exception) as info:
            await pool.request(
                method,
                f"http://127.0.0.1:{server.port}/",
                content=content,
                extensions={"timeout": timeout},
            )
    assert type(info.value) is getattr(core, error)


@pytest.mark.parametrize("which", [0, 1], ids=["asyncio", "anyio"])
async def test_refused(core: ModuleType, which: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    async with core.AsyncConnectionPool(network_backend=backends(core.__name__)[which]) as pool:
        with pytest.raises(core.ConnectError):
            await pool.request("GET", f"http://127.0.0.1:{port}/")


async def test_connect_timeout(core: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def hangs(*args: Any, **kwargs: Any) -> Any:
        await loop.create_future()

    monkeypatch.setattr(loop, "create_connection", hangs)
    backend = AsyncioBackend(core)
    with pytest.raises(core.ConnectTimeout):
        await backend.connect_tcp("127.0.0.1", 9, timeout=0.05)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(authority: trustme.CA) -> Iterator[int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as connection:
                    while read_head(connection):
                        connection.sendall(ACCESS)
            except (ssl.SSLError, OSError):
                continue  # a client that refused our certificate

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("which", [0, 1], ids=["asyncio", "anyio"])
async def test_tls(tls_server: int, authority: trustme.CA, core: ModuleType, which: int) -> None:
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    backend = backends(core.__name__)[which]
    url = f"https://localhost:{tls_server}/"
    async with core.AsyncConnectionPool(ssl_context=trusted, network_backend=backend) as pool:
        response = await pool.request("GET", url)
        assert response.status == 200
        [connection] = pool.connections
        assert connection._connection._network_stream.get_extra_info("ssl_object") is not None
    async with core.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(), network_backend=backend
    ) as pool:
        with pytest.raises(core.ConnectError):  # our test authority is not trusted there
            await pool.request("GET", url)


class FakeTransport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


async def test_reads_take_at_most_what_is_asked_and_pause_the_socket_while_unread() -> None:
    from chatarmin_os._asyncio_network import _HIGH_WATER, _Protocol

    transport = FakeTransport()
    protocol = _Protocol(asyncio.get_running_loop())
    protocol.connection_made(transport)  # type: ignore[arg-type]
    chunk = b"abcdefgh" * 8192  # 64 KiB
    for _ in range(_HIGH_WATER // len(chunk) + 1):
        protocol.data_received(chunk)
    assert transport.calls == ["pause"]  # more than the high-water mark unread
    received = b""
    while protocol.chunks:
        part = protocol.take(1000)
        assert 0 < len(part) <= 1000
        received += part
    assert received == chunk * (_HIGH_WATER // len(chunk) + 1)
    assert transport.calls == ["pause", "resume"]  # read down: the socket is read again
