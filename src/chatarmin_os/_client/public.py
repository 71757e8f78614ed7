"""``ChatarminOSCore``: making a client, a changed copy of it, or a local one (no waiting)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import httpx

from .._base import DEFAULT_MAX_RETRIES, ClientConfig
from .._batching import BatchOptions
from .._exceptions import ChatarminOSError
from .._ledger.options import ReservationOptions
from .._ledger.registry import Flows
from .._types import NOT_GIVEN, NotGiven, Timeout, Transformer
from .core import ClientCore

if TYPE_CHECKING:
    from .._cache import CacheOptions
    from .._usage.options import UsageBufferOptions
    from ..local.engine import LocalEngine

__all__ = ["ChatarminOSCore"]

_C = TypeVar("_C", bound="ChatarminOSCore[Any, Any]")
_H = TypeVar("_H")  # the httpx client class a caller may pass
_S = TypeVar("_S")  # how to wait between retries


class ChatarminOSCore(ClientCore, Generic[_H, _S]):
    """The constructors of the public client; its twin adds the namespaces and what waits."""

    _cache_group: Any
    _reservation_flows: Flows[Any]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transformer: Transformer = "json",
        http_client: _H | None = None,
        default_headers: Mapping[str, str] | None = None,
        sleep: _S | None = None,
        batching: bool | BatchOptions = False,
        cache: bool | CacheOptions | None = None,
        usage_buffer: UsageBufferOptions | None = None,
        reservations: ReservationOptions | None = None,
    ) -> None:
        try:
            options = BatchOptions.resolve(batching)
            buffer_options = None
            if usage_buffer is not None:  # the buffer's code loads only when used
                from .._usage.options import UsageBufferOptions

                buffer_options = UsageBufferOptions.resolve(usage_buffer)
            config = ClientConfig.create(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                transformer=transformer,
                default_headers=default_headers,
            )
            flows: Flows[Any] = Flows(ReservationOptions.resolve(reservations))
        except ChatarminOSError:
            api_key = default_headers = None  # no secrets in tracebacks that show locals
            raise
        self._reservation_flows = flows
        self._setup(config, self._make_pool(http_client), sleep, batching=options)
        self._cache_group = None
        if cache is not None and cache is not False:  # the cache's code loads only when used
            from .._cache import CacheOptions

            cache_options = CacheOptions.resolve(cache)
            assert cache_options is not None
            self._cache_group, close = self._io.cache_group(cache_options, self._background)
            self._on_close(close, last=True)
        self._init_cache()
        self._init_usage_buffers(buffer_options)
        if buffer_options is not None and buffer_options.spool is not None:
            cast(Any, self).usage_buffer.resume()  # send what a crashed process left in the spool

    def _init_cache(self) -> None:
        raise NotImplementedError  # the twin's

    def _init_usage_buffers(self, options: Any, parent: Any = None) -> None:
        raise NotImplementedError  # the twin's

    @classmethod
    def local(
        cls: type[_C],
        engine: LocalEngine | None = None,
        *,
        api_key: str | None = None,
        transformer: Transformer = "json",
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        batching: bool | BatchOptions = False,
        cache: bool | CacheOptions | None = None,
        usage_buffer: UsageBufferOptions | None = None,
        reservations: ReservationOptions | None = None,
    ) -> _C:
        """A client answered by a local ChatarminOS in this process: no socket, no network.

        ``engine`` is a :class:`chatarmin_os.local.LocalEngine` (a fresh in-memory one when
        omitted). Calls go through the real codec and the server's real tRPC handling, so
        they exercise the same wire as production. ``api_key`` defaults to the local
        engine's default key (``os_sk_local_dev``); give it when your engine takes others.

        Example::

            async with AsyncChatarminOS.local() as client:
                result = await client.onboard(external_org_id="org_1", label="Demo", tier_code="free")
        """
        from ..local.engine import DEFAULT_API_KEY
        from ..local.engine import LocalEngine as _LocalEngine
        from ..local.transport import LocalTransport

        transport = LocalTransport(engine if engine is not None else _LocalEngine())
        client = cls(
            api_key=api_key or DEFAULT_API_KEY,
            base_url="http://chatarmin-os.local/api/v1",
            transformer=transformer,
            max_retries=max_retries,
            default_headers=default_headers,
            batching=batching,
            cache=cache,
            usage_buffer=usage_buffer,
            reservations=reservations,
        )
        client._answer_in_process(transport.answer)
        return client

    def with_options(
        self: _C,
        *,
        api_key: str | NotGiven = NOT_GIVEN,
        base_url: str | httpx.URL | NotGiven = NOT_GIVEN,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        transformer: Transformer | NotGiven = NOT_GIVEN,
        default_headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
        batching: bool | BatchOptions | NotGiven = NOT_GIVEN,
    ) -> _C:
        """A copy with some options changed, sharing this client's connection pool.

        ``default_headers`` are added to the current ones. Closing the copy leaves the pool
        open; it closes with the client that made it. The copy shares the entitlement cache
        (a copy with another ``api_key`` uses that product's entries). It shares the usage
        buffer and the quota ledger of ``billing.reserve`` too (with another ``api_key`` or
        ``base_url``, ones of its own with the same options).

        Example::

            patient = client.with_options(timeout=120, max_retries=5)
        """
        copy = object.__new__(type(self))
        try:
            config = self._config.changed(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                transformer=transformer,
                default_headers=default_headers,
            )
        except ChatarminOSError:
            api_key = default_headers = NOT_GIVEN  # no secrets in tracebacks that show locals
            raise
        options = (
            self.batching if isinstance(batching, NotGiven) else BatchOptions.resolve(batching)
        )
        copy._setup(config, self._pool, self._sleep, batching=options, parent=self)
        copy._cache_group = self._cache_group
        copy._init_cache()
        copy._init_usage_buffers(None, parent=self)
        copy._reservation_flows = self._reservation_flows
        return copy
