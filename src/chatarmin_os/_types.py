"""Small shared types: the ``NOT_GIVEN`` sentinel and the configuration aliases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, TypeAlias, TypedDict, final

import httpx

__all__ = [
    "NOT_GIVEN",
    "AsyncHTTPClient",
    "HTTPClient",
    "HTTPRequest",
    "HTTPResponse",
    "NotGiven",
    "RequestOptions",
    "Timeout",
    "Transformer",
]


@final
class NotGiven:
    """The type of :data:`NOT_GIVEN`: marks an argument the caller did not pass.

    It differs from ``None``: ``features.set_access(quantity_limit=None)`` sends
    ``"quantityLimit": null`` (unlimited), leaving the argument out sends nothing.
    """

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()
"""The sentinel default of optional arguments: "the caller did not pass this"."""

Transformer: TypeAlias = Literal["json", "superjson"]
"""How the server encodes values: plain JSON (the default) or superjson."""

if TYPE_CHECKING:
    import httpx2

    Timeout: TypeAlias = float | httpx.Timeout | httpx2.Timeout | None
    """Seconds for every phase, an :class:`httpx.Timeout` or ``httpx2.Timeout``, or ``None``
    for no timeout."""
    HTTPClient: TypeAlias = httpx.Client | httpx2.Client
    """A blocking client of httpx or of httpx2 (``http_client=``)."""
    AsyncHTTPClient: TypeAlias = httpx.AsyncClient | httpx2.AsyncClient
    """An async client of httpx or of httpx2 (``http_client=``)."""
    HTTPRequest: TypeAlias = httpx.Request | httpx2.Request
    """A request of httpx or httpx2: the library of the client that sent it."""
    HTTPResponse: TypeAlias = httpx.Response | httpx2.Response
    """A response of httpx or httpx2: the library of the client that received it."""
else:  # httpx2 is imported only when used: at runtime the aliases name httpx's classes
    Timeout = float | httpx.Timeout | None
    HTTPClient = httpx.Client
    AsyncHTTPClient = httpx.AsyncClient
    HTTPRequest = httpx.Request
    HTTPResponse = httpx.Response


class RequestOptions(TypedDict, total=False):
    """The per-call keyword arguments every method takes (openai-python's names), as one
    ``TypedDict``: for wrappers of your own (``**options: Unpack[RequestOptions]``).

    They apply to the HTTP request(s) of that one call, never to later calls or to other
    calls of a batch (a call with options is sent on its own):

    * ``extra_headers``: headers to add (or override, except ``Authorization``);
    * ``extra_query``: query parameters to add (not ``input`` or ``batch``, which tRPC uses);
    * ``timeout``: seconds, an :class:`httpx.Timeout`, or ``None`` for no timeout, instead of
      the client's.

    Example::

        tiers = client.tiers.list(extra_headers={"X-Trace": "abc"}, timeout=5)
    """

    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, object] | None
    timeout: Timeout | NotGiven
