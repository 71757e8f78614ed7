"""The entitlement cache's Redis level in the async client: the parts that wait.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_redis.py``. Connections,
back-off, decoding and message handling are in :mod:`chatarmin_os._cache.redis_level`;
here: the commands, the pub/sub listener, closing. The async client uses ``redis.asyncio``
under asyncio (one connection pool per event loop); under trio it has no Redis level.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .._cache.redis_layout import (
    REDIS_FIRST_BACKOFF,
    REDIS_MAX_BACKOFF,
    async_redis_loop,
    encode_entry,
    encode_message,
    encode_usage,
    load_async_redis,
    wall_clock,
)
from .._cache.redis_level import RedisLevelCore
from .._cache.rules import Key
from .._concurrency import asleep, await_event, new_async_event
from .._models import UsageResult

__all__ = ["AsyncRedisLevel"]

_LISTEN_POLL = 0.25  # seconds the listener waits for a message before looking at _closing
_CLOSE_WAIT = 1.0  # seconds closing waits for the listener to stop


class AsyncRedisLevel(RedisLevelCore):
    """The cache's shared level in Redis (see :class:`~chatarmin_os._cache.redis_level.RedisLevelCore`)."""

    _load_module = staticmethod(load_async_redis)
    _current_loop = staticmethod(async_redis_loop)

    async def read(self, key: Key, company: str | None) -> tuple[bytes | None, object] | None:
        """``(entry bytes, source)`` from Redis, ``None`` without Redis.

        ``source`` is what the answer is made of (the entry's bytes, with its usage
        overlays): an entry decoded from an equal source needs no decoding again.
        """
        client = self.connection()
        place = self.keys.location(key, company)
        if client is None or place is None:
            return None
        bucket, field = place
        try:
            if key[0] == "c":
                raw, overlay = await client.hmget(bucket, field, f"use:{key[2]}")
                source: object = raw if overlay is None else (raw, overlay)
            elif key[0] == "o":
                raw = source = await client.hget(bucket, field)
            else:
                fields = await client.hgetall(bucket)
                raw = fields.get(field.encode())
                source = (raw, *sorted(v for k, v in fields.items() if k.startswith(b"use:")))
        except Exception as error:
            self.failed("read", error)
            return None
        if self._backoff != REDIS_FIRST_BACKOFF:
            self.succeeded()
        return raw, source

    async def generation(self, key: Key, company: str | None) -> str | None:
        """The generation of the hash ``key`` lives in, read before asking the server (a
        write of the answer is refused if the hash was invalidated since); ``None`` when
        Redis cannot be used."""
        client = self.connection()
        place = self.keys.location(key, company)
        if client is None or place is None:
            return None
        try:
            generation = await client.hget(place[0], "_g")
        except Exception as error:
            self.failed("read", error)
            return None
        return "0" if generation is None else generation.decode()

    async def write(self, key: Key, value: Any, company: str | None, generation: str) -> None:
        """Store an answer, unless the hash was invalidated since ``generation`` was read."""
        client = self.connection()
        place = self.keys.location(key, company)
        if client is None or place is None:
            return
        bucket, field = place
        try:
            await self._scripts["set"](
                keys=[bucket],
                args=[generation, field, encode_entry(value, wall_clock()), self._px],
            )
        except Exception as error:
            self.failed("write", error)
            return
        self.succeeded()

    async def record_usage(self, company: str, usage: UsageResult) -> None:
        """Write a usage overlay and tell the other processes."""
        client = self.connection()
        if client is None:
            return
        feature = usage.feature_code
        try:
            await self._scripts["usage"](
                keys=[self.keys.company(company)],
                args=[
                    f"use:{feature}",
                    f"chk:{feature}",
                    usage.current_usage,
                    encode_usage(usage, wall_clock()),
                    self._px,
                ],
            )
            await client.publish(
                self.keys.channel, encode_message(self._id, [["u", company, feature]])
            )
        except Exception as error:
            self.failed("usage", error)
            return
        self.succeeded()

    async def invalidate(
        self,
        companies: list[str],
        orgs: list[str],
        ops: list[list[str]],
        *,
        all_orgs: bool = False,
        everything: bool = False,
    ) -> None:
        """Drop hashes (bumping their generation), then tell the other processes."""
        client = self.connection()
        if client is None:
            return
        keys = self.keys
        buckets = [keys.company(c) for c in companies] + [keys.org(o) for o in orgs]
        try:
            if buckets:
                await self._scripts["invalidate"](keys=buckets, args=[self._px])
            if all_orgs or everything:
                pattern = keys.all_pattern() if everything else keys.orgs_pattern()
                doomed = [key async for key in client.scan_iter(match=pattern, count=500)]
                doomed = [key for key in doomed if key != keys.channel.encode()]
                for start in range(0, len(doomed), 500):
                    await client.delete(*doomed[start : start + 500])
            await client.publish(keys.channel, encode_message(self._id, ops))
        except Exception as error:
            self.failed("invalidate", error)
            return
        self.succeeded()

    async def _listen(self) -> None:
        done = new_async_event()
        self._listener_done = done
        backoff = REDIS_FIRST_BACKOFF
        try:
            while not self._closing:
                pubsub: Any = None
                try:
                    client = self._connect()
                    if client is None:
                        return
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self.keys.channel)
                    self._subscribed()
                    backoff = REDIS_FIRST_BACKOFF
                    while not self._closing:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=_LISTEN_POLL
                        )
                        if message is not None and message.get("type") == "message":
                            self._deliver(message.get("data"))
                except Exception as error:
                    if self._closing:
                        return
                    self.failed("listen", error)
                    waited = 0.0
                    while waited < backoff and not self._closing:
                        await asleep(_LISTEN_POLL)
                        waited += _LISTEN_POLL
                    backoff = min(backoff * 2, REDIS_MAX_BACKOFF)
                finally:
                    if pubsub is not None:
                        with contextlib.suppress(Exception):
                            await pubsub.aclose()
        finally:
            done.set()

    async def aclose(self) -> None:
        """Stop the listener (waiting at most 1 s) and close this loop's connections."""
        self._closing = True
        done, listener = self._listener_done, self._listener
        if done is not None and listener is not None and listener.alive():
            client = self._current_client()
            if client is not None:  # wake the listener now (it ignores its own messages)
                with contextlib.suppress(Exception):
                    await client.publish(self.keys.channel, encode_message(self._id, []))
            await await_event(done, _CLOSE_WAIT)
        client = self._current_client()
        self._client = None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
