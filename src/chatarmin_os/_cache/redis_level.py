"""What both twins of the cache's Redis level share: connections, back-off, decoding, messages.

The twins (``_async/_redis.py`` and its generated ``_sync/``) add what waits: the commands,
the pub/sub listener and closing. The level never sees its cache: it is handed the clock,
the counters and two listeners (a change another process published; messages that may have
been missed) when it is made.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from .._exceptions import ChatarminOSError
from .._logs import logger
from .options import CacheCounters, CacheOptions, redacted_url
from .redis_layout import (
    INVALIDATE,
    RECORD_USAGE,
    REDIS_FIRST_BACKOFF,
    REDIS_MAX_BACKOFF,
    REDIS_TIMEOUT,
    SET_IF_GENERATION,
    RedisKeys,
    apply_overlays,
    check_redis_url,
    decode_entry,
    decode_message,
)
from .rules import Key, describe_key

__all__ = ["RedisLevelCore"]


class RedisLevelCore:
    """The cache's shared level in Redis, and the listener for other processes' changes.

    Redis being slow, down or unreachable never raises: each failure counts in
    ``stats().redis_errors``, is logged (DEBUG; WARNING when Redis becomes unreachable, INFO
    when it answers again) and pauses Redis for a back-off (0.5 s doubling to 30 s), while the
    cache goes on in this process alone.

    ``connection()`` is the ``redis`` client of the running loop (made on first use), or
    ``None`` while Redis is in a back-off or cannot be used here: what code beside the cache
    (e.g. a quota ledger) uses to reach the same Redis, with :attr:`keys` for where things are.
    """

    _load_module: ClassVar[Callable[[], Any]]
    """The twin's ``redis`` client module (``redis.asyncio`` or ``redis``)."""
    _current_loop: ClassVar[Callable[[], object | None]]
    """The twin's loop marker (a Redis client belongs to one event loop)."""
    _listen: Callable[[], Any]
    """The twin's pub/sub listener (runs in the background until closing)."""

    def __init__(
        self,
        url: str,
        keys: RedisKeys,
        options: CacheOptions,
        *,
        clock: Callable[[], float],
        counters: CacheCounters,
        listener: Callable[[list[list[str]]], None],
        missed: Callable[[], None],
        background: Any,
    ) -> None:
        self._url = url
        self.keys = keys
        self._clock = clock
        self._counters = counters
        self._listener_callback = listener
        self._missed = missed
        self._background = background
        self._px = int(max(options.ttl, options.max_stale) * 1000) + 1000
        self._closing = False
        type(self)._load_module()  # fail at construction when the package is missing ...
        check_redis_url(url)  # ... or the URL is one it cannot use
        self._reset()

    def _reset(self) -> None:
        self._id = uuid.uuid4().hex  # this process's cache, in pub/sub messages
        self._client: Any = None
        self._client_loop: object | None = None
        self._scripts: dict[str, Any] = {}
        self._down_until = 0.0
        self._backoff = REDIS_FIRST_BACKOFF
        self._lock = threading.Lock()
        self._listener: Any = None
        self._loads = 0
        self._check_listener = True
        self._listener_done: Any = None
        self._listener_started = False
        self._warned_loop = False

    def _after_fork_in_child(self) -> None:
        self._reset()  # the parent's sockets and listener stay the parent's

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redacted_url(self._url)}>"

    # -- connections ------------------------------------------------------------------------

    def available(self) -> bool:
        """Whether Redis may be used now (not in a back-off, usable under this loop)."""
        return self._clock() >= self._down_until and type(self)._current_loop() is not None

    def _connect(self) -> Any:
        """The Redis client for the running loop (made on first use), or ``None``."""
        loop = type(self)._current_loop()
        if loop is None:
            if not self._warned_loop:
                self._warned_loop = True
                logger.info("cache: no Redis level without an asyncio loop (in-process only)")
            return None
        if self._client is None or self._client_loop is not loop:
            with self._lock:
                if self._client is None or self._client_loop is not loop:
                    module = type(self)._load_module()
                    try:
                        client = module.Redis.from_url(
                            self._url,
                            socket_timeout=REDIS_TIMEOUT,
                            socket_connect_timeout=REDIS_TIMEOUT,
                            retry=None,
                        )
                    except Exception as error:  # e.g. a URL redis cannot parse
                        self.failed("connect", error)
                        return None
                    self._scripts = {
                        name: client.register_script(source)
                        for name, source in (
                            ("set", SET_IF_GENERATION),
                            ("invalidate", INVALIDATE),
                            ("usage", RECORD_USAGE),
                        )
                    }
                    self._client, self._client_loop = client, loop
                    self._check_listener = True  # another loop: is the listener there?
        return self._client

    def connection(self) -> Any:
        """The ``redis`` client of the running loop, or ``None`` when Redis cannot be used
        now (closing, in a back-off, no loop). Report failures with :meth:`failed`."""
        if self._closing or self._clock() < self._down_until:
            return None
        return self._connect()

    def failed(self, what: str, error: BaseException) -> None:
        """A Redis command failed: count it, log it, pause Redis for the back-off."""
        self._counters.redis_errors += 1
        first = self._clock() >= self._down_until and self._backoff == REDIS_FIRST_BACKOFF
        self._down_until = self._clock() + self._backoff
        if first:
            logger.warning(
                "cache: Redis at %s unreachable (%s: %s); in-process only for now",
                redacted_url(self._url),
                type(error).__name__,
                error,
            )
        logger.debug("cache: Redis %s failed: %s: %s", what, type(error).__name__, error)
        self._backoff = min(self._backoff * 2, REDIS_MAX_BACKOFF)

    def succeeded(self) -> None:
        """A Redis command succeeded: the back-off (if any) ends."""
        if self._backoff != REDIS_FIRST_BACKOFF:
            logger.info("cache: Redis at %s answers again", redacted_url(self._url))
            self._backoff = REDIS_FIRST_BACKOFF

    # -- entries and messages ---------------------------------------------------------------

    def decode(self, key: Key, raw: bytes | None, source: object) -> tuple[Any, float] | None:
        """The value of an entry read by ``read`` (overlays applied) and the unix time it
        was fetched; ``None`` when there is none, or none this SDK can read."""
        if raw is None:
            return None
        try:
            value, fetched = decode_entry(key[0], raw)
            if isinstance(source, tuple):
                value = apply_overlays(value, fetched, source[1:])
        except Exception as error:  # an entry this SDK cannot read: load it again
            logger.debug("cache: unreadable Redis entry %s: %s", describe_key(key), error)
            return None
        return value, fetched

    def ensure_listener(self) -> None:
        """Start the pub/sub listener (the twin's ``_listen``) when it is not running here
        (lazily, on a miss).

        Looked at on every 64th load (and whenever the connection is made anew, e.g. under
        another event loop): a check costs a lock, and a dead listener only means entries
        here live out their ``local_ttl``.
        """
        self._loads += 1
        if self._loads & 63 and not self._check_listener:
            return
        self._check_listener = False
        listener = self._listener
        if self._closing or (listener is not None and listener.alive()):
            return
        if type(self)._current_loop() is None:
            return
        try:
            self._listener = self._background.start(self._listen, "chatarmin_os cache listener")
        except ChatarminOSError:  # no background work possible here: TTLs bound staleness
            self._listener = None

    def _current_client(self) -> Any:
        """The client made under the running loop, or ``None`` (made under another)."""
        return self._client if self._client_loop is type(self)._current_loop() else None

    def _deliver(self, data: Any) -> None:
        try:
            source, ops = decode_message(data)
        except (ValueError, TypeError, KeyError) as error:
            logger.debug("cache: unreadable pub/sub message: %s", error)
            return
        if source != self._id:
            self._listener_callback(ops)

    def _subscribed(self) -> None:
        """The listener subscribed (again: messages may have been missed meanwhile)."""
        if self._listener_started:
            self._missed()
        self._listener_started = True
