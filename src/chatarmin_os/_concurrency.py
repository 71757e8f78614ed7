"""The few primitives that differ between the async and the sync client.

``_async`` code imports the async names; ``scripts/gen_sync.py`` rewrites them to the
sync names (``asleep`` -> ``sleep``, ``AsyncSleeper`` -> ``Sleeper``, ``current_loop`` ->
``no_loop``, ``AsyncEvent`` -> ``Event``, ``new_async_event`` -> ``new_event``,
``await_event`` -> ``wait_event``, ``arun_both`` -> ``run_both``, ``AsyncFetch`` ->
``Fetch``). Waiting goes through anyio in the async client, so it works under asyncio and
trio alike.
"""

from __future__ import annotations

import atexit
import functools
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeAlias, TypeVar

if TYPE_CHECKING:
    import anyio

_T = TypeVar("_T")
_U = TypeVar("_U")
_P = ParamSpec("_P")

__all__ = [
    "AsyncBackground",
    "AsyncEvent",
    "AsyncFetch",
    "AsyncMethod",
    "AsyncSleeper",
    "AsyncWork",
    "AwaitableContext",
    "Background",
    "Event",
    "Fetch",
    "Latch",
    "Method",
    "Sleeper",
    "Work",
    "agather",
    "arun_both",
    "asleep",
    "at_exit",
    "at_exit_async",
    "await_event",
    "awaitable_context",
    "context_now",
    "current_loop",
    "gather",
    "new_async_event",
    "new_event",
    "no_loop",
    "run_both",
    "sleep",
    "wait_event",
]


AsyncSleeper: TypeAlias = Callable[[float], Awaitable[None]]
"""An async function that waits for the given number of seconds."""

Sleeper: TypeAlias = Callable[[float], None]
"""A function that blocks for the given number of seconds."""

AsyncWork: TypeAlias = Callable[[], Awaitable[None]]
"""A piece of work to run later: an async function without arguments."""

Work: TypeAlias = Callable[[], None]
"""A piece of work to run later: a function without arguments."""

AsyncFetch: TypeAlias = Callable[[], Awaitable[_T]]
"""An async function without arguments that answers a ``_T`` (a request to make later)."""

Fetch: TypeAlias = Callable[[], _T]
"""A function without arguments that answers a ``_T`` (a request to make later)."""

AsyncMethod: TypeAlias = Callable[_P, Awaitable[_T]]
"""An async function taking ``_P`` and answering a ``_T`` (a client method)."""

Method: TypeAlias = Callable[_P, _T]
"""A function taking ``_P`` and answering a ``_T`` (a client method)."""


async def asleep(seconds: float) -> None:
    """Wait ``seconds`` under whichever event loop runs (asyncio or trio), via anyio."""
    import anyio

    await anyio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Block the calling thread for ``seconds``."""
    time.sleep(seconds)


async def alet_others_run() -> None:
    """Let the event loop run other tasks (a background worker) before going on; waits for
    nothing and is not a cancellation point. (A task that never awaits starves them.)"""
    import anyio.lowlevel

    await anyio.lowlevel.cancel_shielded_checkpoint()


def let_others_run() -> None:
    """Nothing: threads take turns without being asked (the interpreter's switch interval).

    (Giving up the GIL here with ``time.sleep(0)`` measured no gain for a worker thread.)
    """


AsyncEvent: TypeAlias = "anyio.Event"
"""An event async code waits on (anyio's: asyncio and trio alike)."""


class Latch:
    """A one-shot event for threads, set once: one lock (``threading.Event`` costs ~20x more
    to make and set, and the cache makes one per load)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        """Let every waiter through (setting it again does nothing)."""
        try:  # noqa: SIM105 - one per load: a context manager costs more
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def is_set(self) -> bool:
        """Whether :meth:`set` was called."""
        return not self._lock.locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set (or ``timeout`` seconds passed); whether it was set."""
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._lock.release()
        return True


Event: TypeAlias = Latch
"""An event blocking code waits on (a :class:`Latch`)."""


def new_async_event() -> anyio.Event:
    """A new event; make it inside the coroutine that uses it (anyio needs an async context)."""
    import anyio

    return anyio.Event()


def new_event() -> Latch:
    """A new event for threads."""
    return Latch()


async def await_event(event: anyio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds passed (``None``: no limit);
    whether it was set."""
    if timeout is None:
        await event.wait()
        return True
    import anyio

    with anyio.move_on_after(max(0.0, timeout)):
        await event.wait()
    return event.is_set()


def wait_event(event: Latch, timeout: float | None) -> bool:
    """Block until ``event`` is set or ``timeout`` seconds passed (``None``: no limit);
    whether it was set."""
    return event.wait(None if timeout is None else max(0.0, timeout))


async def arun_both(
    first: Callable[[], Awaitable[_T]], second: Callable[[], Awaitable[_U]]
) -> tuple[_T, _U]:
    """Run two coroutine functions concurrently (a task group); both results.

    When one raises, the other is cancelled and the error propagates (the first error
    when both fail, unwrapped from anyio's exception group).
    """
    import anyio

    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    async def run(index: int, work: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[index] = await work()
        except Exception as exc:
            errors.append(exc)
            group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(run, 0, first)
        group.start_soon(run, 1, second)
    if errors:
        raise errors[0]
    return results[0], results[1]


def run_both(first: Callable[[], _T], second: Callable[[], _U]) -> tuple[_T, _U]:
    """The blocking twin of :func:`arun_both`: one after the other."""
    return first(), second()


def current_loop() -> object | None:
    """The event loop running now: the asyncio loop, or trio's token; ``None`` outside one.

    Connections belong to the loop that opened them; a client compares this with the loop
    its pool was made under to notice ``asyncio.run`` being called again, a test suite's
    fresh loop per test, or a forked child's new loop.
    """
    asyncio = sys.modules.get("asyncio")  # not imported: no asyncio loop can be running
    if asyncio is not None:
        loop: object | None = asyncio._get_running_loop()
        if loop is not None:
            return loop
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()  # type: ignore[no-any-return]
        except RuntimeError:
            return None
    return None


def async_network_backend(lib: ModuleType) -> object | None:
    """The network backend the SDK's own async pools made with ``lib`` (httpx or httpx2) use:
    :class:`~chatarmin_os._asyncio_network.AsyncioBackend` on asyncio's own loops and uvloop's,
    ``None`` (the library's own, through anyio) under trio, another loop or outside one."""
    asyncio = sys.modules.get("asyncio")
    loop = None if asyncio is None else asyncio._get_running_loop()
    if asyncio is None or loop is None:
        return None
    if not isinstance(loop, asyncio.BaseEventLoop) and not type(loop).__module__.startswith(
        "uvloop"
    ):
        return None  # a loop we have not tried: the library's own way
    import importlib

    from ._asyncio_network import AsyncioBackend

    return AsyncioBackend(
        importlib.import_module("httpcore2" if lib.__name__ == "httpx2" else "httpcore")
    )


def sync_network_backend(lib: ModuleType) -> object | None:
    """The sync twin of :func:`async_network_backend`: blocking pools keep the library's own."""
    return None


def no_loop() -> object | None:
    """The sync twin of :func:`current_loop`: blocking code has no event loop."""
    return None


async def agather(works: Sequence[Callable[[], Awaitable[_T]]]) -> list[_T]:
    """Run async functions at once, the first in this task, the others in tasks of an anyio
    task group (asyncio and trio); their results, in order."""
    results: list[Any] = [None] * len(works)
    if len(works) == 1:
        results[0] = await works[0]()
        return results
    import anyio

    async def run(index: int, work: Callable[[], Awaitable[_T]]) -> None:
        results[index] = await work()

    async with anyio.create_task_group() as group:
        for index, work in enumerate(works[1:], 1):
            group.start_soon(run, index, work)
        results[0] = await works[0]()
    return results


def gather(works: Sequence[Callable[[], _T]]) -> list[_T]:
    """The blocking twin of :func:`agather`: the first here, each other in a thread of its
    own (here too, after the first, when no thread can start, as at interpreter exit)."""
    results: list[Any] = [None] * len(works)
    errors: list[BaseException] = []

    def run(index: int, work: Callable[[], _T]) -> None:
        try:
            results[index] = work()
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    threads = []
    later = []
    for index, work in enumerate(works[1:], 1):
        thread = threading.Thread(target=run, args=(index, work), daemon=True)
        try:
            thread.start()
        except RuntimeError:
            later.append((index, work))
        else:
            threads.append(thread)
    try:
        results[0] = works[0]()
        for index, work in later:
            run(index, work)
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return results


def at_exit_async(work: AsyncWork) -> None:
    """Nothing: no event loop runs at interpreter exit, so async work cannot be run then.

    (Async clients flush in ``aclose()`` / ``async with``; see :func:`at_exit`.)
    """


def at_exit(work: Work) -> None:
    """Run ``work()`` at interpreter exit (before daemon threads stop), errors logged."""

    def run() -> None:
        try:
            work()
        except Exception:
            from ._logs import logger

            logger.exception("chatarmin_os: work at interpreter exit failed")

    atexit.register(run)


class _Handle:
    """A started piece of background work: is it still running where we are?"""

    __slots__ = ("_done", "_loop", "_thread")

    def __init__(self, loop: object | None, thread: threading.Thread | None = None) -> None:
        self._done = False
        self._loop = loop
        self._thread = thread

    def alive(self) -> bool:
        """Still running, in this process and (async) under the running event loop."""
        if self._thread is not None:
            return self._thread.is_alive()  # threads do not survive a fork
        return not self._done and self._loop is current_loop()


class AsyncBackground:
    """Where an async client runs background work (flushing usage, refreshing the cache).

    Under asyncio, work runs as tasks of the running loop that the client keeps and cancels
    when it closes, whether or not it is used as ``async with`` (so entering the client in one
    task and leaving it in another, as pytest-asyncio fixtures do, is fine). Under trio, work
    needs a nursery: ``async with client:`` opens one (enter and leave it in one task, trio's
    rule), and :meth:`start` outside it says so. Work started under a loop that has since
    closed is not alive: start it again.
    """

    def __init__(self) -> None:
        self._group: Any = None
        self._group_cm: Any = None
        self._tasks: set[Any] = set()

    async def open(self) -> None:
        """Under trio, open the client's nursery (from ``__aenter__``)."""
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None and asyncio._get_running_loop() is not None:
            return  # asyncio: tasks of the running loop, nothing to enter
        import anyio

        self._group_cm = anyio.create_task_group()
        self._group = await self._group_cm.__aenter__()

    async def close(self) -> None:
        """Cancel what still runs and leave the task group (from ``__aexit__``/``aclose``)."""
        group, cm, self._group, self._group_cm = self._group, self._group_cm, None, None
        loop = current_loop()
        for task in list(self._tasks):
            if task.get_loop() is loop:
                task.cancel()
        self._tasks.clear()
        if group is not None:
            group.cancel_scope.cancel()
            await cm.__aexit__(None, None, None)

    def can_start(self) -> bool:
        """Whether :meth:`start` works here: an asyncio loop runs, or our nursery is open."""
        asyncio = sys.modules.get("asyncio")
        if asyncio is not None and asyncio._get_running_loop() is not None:
            return True
        return self._group is not None

    def start(self, work: AsyncWork, name: str) -> _Handle:
        """Run ``work()`` in the background; the handle tells whether it still runs."""
        handle = _Handle(current_loop())

        async def run() -> None:
            try:
                await work()
            finally:
                handle._done = True

        asyncio = sys.modules.get("asyncio")
        loop = asyncio._get_running_loop() if asyncio is not None else None
        if loop is None:
            if self._group is not None:
                self._group.start_soon(run, name=name)
                return handle
            from ._exceptions import ChatarminOSError

            raise ChatarminOSError(
                f"{name} needs the client in `async with` under trio (or a running asyncio loop)"
            )
        task = loop.create_task(run(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle


class Background:
    """The blocking client's background work: daemon threads (see :class:`AsyncBackground`)."""

    def open(self) -> None:
        """Nothing to enter for threads."""

    def close(self) -> None:
        """Threads stop on their own once the client's shutdown steps told them to."""

    def can_start(self) -> bool:
        """Threads can always start."""
        return True

    def start(self, work: Work, name: str) -> _Handle:
        """Run ``work()`` in a daemon thread; the handle tells whether it still runs."""
        thread = threading.Thread(target=work, name=name, daemon=True)
        handle = _Handle(None, thread)
        thread.start()
        return handle


_Entered = TypeVar("_Entered")


class AwaitableContext(Generic[_Entered]):
    """What an async method making a context object returns: ``await`` it for the object,
    or ``async with`` it to use the object as its context right away."""

    __slots__ = ("_making", "_value")

    def __init__(self, making: Coroutine[Any, Any, _Entered]) -> None:
        self._making = making
        self._value: Any = None

    def __await__(self) -> Generator[Any, None, _Entered]:
        return self._making.__await__()

    async def __aenter__(self) -> _Entered:
        value = await self._making
        self._value = value
        await value.__aenter__()  # type: ignore[attr-defined]
        return value

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._value.__aexit__(*exc_info)


def awaitable_context(
    method: Callable[_P, Coroutine[Any, Any, _Entered]],
) -> Callable[_P, AwaitableContext[_Entered]]:
    """Make an ``async def`` returning a context object usable with ``await`` and with
    ``async with`` (the blocking twin, :func:`context_now`, returns the object itself)."""

    @functools.wraps(method)
    def making(*args: _P.args, **kwargs: _P.kwargs) -> AwaitableContext[_Entered]:
        return AwaitableContext(method(*args, **kwargs))

    return making


def context_now(method: Callable[_P, _Entered]) -> Callable[_P, _Entered]:
    """The blocking twin of :func:`awaitable_context`: the method as it is."""
    return method
