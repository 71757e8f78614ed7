"""Request batching, the parts both clients share: options, prepared calls, batch planning.

tRPC's ``httpBatchLink`` on the wire: calls of one kind go together as
``GET|POST {base}/{p0},{p1}?batch=1`` with the inputs keyed ``"0"``, ``"1"``, ... and come
back as an array of envelopes in the same order. This module holds no I/O; the clients'
batchers (``_async/_batcher.py``) and request loops do the sending.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import APIStatusError, ChatarminOSError, ConfigurationError
from ._types import HTTPResponse
from ._wire import Kind, batch_query_length_of, item_query_length

if TYPE_CHECKING:
    from ._client.options import CallOptions
    from ._client.request import WireRequest

__all__ = ["BatchOptions", "Call", "plan_batches", "refuses_batching"]


@dataclass(frozen=True)
class BatchOptions:
    """How calls made at the same time are put into tRPC batch requests.

    Args:
        max_items: the most calls in one batch request (the local ChatarminOS and tRPC
            servers configured with ``maxBatchSize`` refuse more; ours allows 100).
        max_url_length: the longest URL a query batch may have, in characters; 8,192 is
            safe for common servers and proxies. A call too long for any batch goes alone.
        wait: seconds the first call of a batch waits for others to join. ``0`` (the
            default) takes the calls made until the event loop next runs (async) or that
            arrive while the previous batch is being sent (threads): no added latency.
    """

    max_items: int = 50
    max_url_length: int = 8192
    wait: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_items", "max_url_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"BatchOptions.{name} must be an int >= 1")
        wait = self.wait
        if (
            isinstance(wait, bool)
            or not isinstance(wait, (int, float))
            or not math.isfinite(wait)
            or not 0 <= wait <= 60
        ):
            raise ConfigurationError("BatchOptions.wait must be seconds from 0 to 60")

    @classmethod
    def resolve(cls, batching: bool | BatchOptions | None) -> BatchOptions | None:
        """``batching=`` as a client takes it: ``False``/``None`` off, ``True`` defaults."""
        if batching is None or batching is False:
            return None
        if batching is True:
            return cls()
        if isinstance(batching, BatchOptions):
            return batching
        raise ConfigurationError(
            f"batching must be True, False or a BatchOptions, got {type(batching).__name__}"
        )


class Call:
    """One procedure call, encoded and waiting for its outcome.

    ``value`` is its input as JSON text (``None``: the procedure takes none), ``quoted`` the
    same percent-encoded for a query URL. Identical queries in flight share one ``Call``
    (``key``). The sending side sets ``output`` and ``response``, or ``error``, then ``done``;
    ``request`` and ``elapsed`` are the last attempt's request and its seconds. ``options``
    are the call's own (``extra_headers=``, ...): such a call goes alone, never shared.
    """

    __slots__ = (
        "batch_size",
        "cause",
        "done",
        "elapsed",
        "error",
        "idempotent",
        "key",
        "kind",
        "options",
        "output",
        "path",
        "quoted",
        "request",
        "response",
        "retries",
        "value",
    )

    def __init__(
        self,
        path: str,
        kind: Kind,
        value: str | None,
        quoted: str | None,
        *,
        idempotent: bool,
        options: CallOptions | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.value = value
        self.quoted = quoted
        self.idempotent = idempotent
        self.options = options
        shareable = kind == "query" and options is None
        self.key: tuple[str, str | None] | None = (path, value) if shareable else None
        self.output: Any = None
        self.response: HTTPResponse | None = None
        self.error: ChatarminOSError | None = None
        self.cause: BaseException | None = None
        self.done: Any = None  # the waiting primitive of the client variant
        self.retries = 0  # times sent again
        self.batch_size = 1  # calls in the last request that carried it
        self.request: WireRequest | None = None
        self.elapsed = 0.0

    @property
    def finished(self) -> bool:
        """Whether an outcome (output or error) was set."""
        return self.response is not None or self.error is not None

    def succeed(self, output: Any, response: HTTPResponse) -> None:
        """Record the call's output."""
        self.output, self.response = output, response

    def fail(self, error: ChatarminOSError, cause: BaseException | None) -> None:
        """Record the call's error (its ``cause`` is chained when it is raised)."""
        self.error, self.cause = error, cause


def plan_batches(
    calls: Sequence[Call], options: BatchOptions, base_url_length: int
) -> list[list[Call]]:
    """Split calls of one kind into batches within ``max_items`` and ``max_url_length``.

    Calls keep their order within and across batches, except that a query whose URL would
    pass ``max_url_length`` even in a batch of its own goes alone, at once, while the calls
    around it go on filling one batch (it is then sent as a plain call, whose limit is
    httpx's).
    A batch's URL length is kept up to date call by call (``_UrlLength``), not summed again.
    """
    limit = options.max_url_length
    batches: list[list[Call]] = []
    current: list[Call] = []
    length = _UrlLength(base_url_length)
    for call in calls:
        query = call.kind == "query"
        if query and _UrlLength(base_url_length).with_call(call, 0) > limit:
            batches.append([call])
            continue
        if len(current) == options.max_items or (
            query and length.with_call(call, len(current)) > limit
        ):
            batches.append(current)
            current, length = [], _UrlLength(base_url_length)
        length.add(call, len(current))
        current.append(call)
    if current:
        batches.append(current)
    return batches


class _UrlLength:
    """The length of a batch's URL (``{paths}?batch=1&input={quoted inputs}``) as calls are
    added: the parts add up, see ``_wire.batch_query_length``."""

    __slots__ = ("_fixed", "_items", "_paths", "_quoted")

    def __init__(self, base_url_length: int) -> None:
        self._fixed = base_url_length + len("?batch=1&input=")
        self._paths = -1  # the paths and the commas between them
        self._items = 0  # the quoted inputs, each with its key
        self._quoted = 0  # how many calls have an input

    def with_call(self, call: Call, index: int) -> int:
        """The URL's length if ``call`` came next, as call number ``index``."""
        paths, items, quoted = self._grown(call, index)
        return self._fixed + paths + batch_query_length_of(items, quoted)

    def add(self, call: Call, index: int) -> None:
        """Count ``call`` in, as call number ``index``."""
        self._paths, self._items, self._quoted = self._grown(call, index)

    def _grown(self, call: Call, index: int) -> tuple[int, int, int]:
        paths = self._paths + len(call.path) + 1
        if call.quoted is None:
            return paths, self._items, self._quoted
        return paths, self._items + item_query_length(index, call.quoted), self._quoted + 1


_NOT_ENABLED = "Batching is not enabled on the server"


def refuses_batching(error: BaseException) -> bool:
    """Whether an answer to a batch says the server takes no batches (tRPC's
    ``allowBatching: false``): ``400 BAD_REQUEST "Batching is not enabled on the server"``."""
    return (
        isinstance(error, APIStatusError)
        and error.status_code == 400
        and error.code == "BAD_REQUEST"
        and _NOT_ENABLED in error.message
    )
