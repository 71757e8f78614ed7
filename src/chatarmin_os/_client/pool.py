"""What every transport of a client shares: the state the request loop reads without waiting.

A twin's pool (``_async/_http.py``: the HTTP pool, the in-process pool) derives from
:class:`PoolCore` and adds ``send(request) -> httpx.Response`` and ``aclose()``/``close()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .._logs import logger

__all__ = ["InProcessAnswer", "InProcessResponse", "PoolCore"]


class InProcessResponse(Protocol):
    """What an in-process server answers: status, headers and the whole body."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...


class InProcessAnswer(Protocol):
    """An in-process server's direct entry point (``LocalTransport.answer``): the encoded
    request's method, target relative to the base URL, headers and body."""

    def __call__(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> InProcessResponse: ...


class PoolCore:
    """The non-waiting half of a pool: ownership, closed state, the server's batching answer."""

    _owned: bool = True
    _closed: bool = False
    batching_refused: bool = False
    """Whether the server answered a batch "Batching is not enabled on the server"."""

    @property
    def owned(self) -> bool:
        """Whether the pool is ours (made here) rather than the caller's ``http_client``."""
        return self._owned

    @property
    def is_closed(self) -> bool:
        """Whether the pool was closed."""
        return self._closed

    def refuse_batching(self, where: str) -> None:
        """Send calls one by one from now on (logged once per pool)."""
        if not self.batching_refused:
            self.batching_refused = True
            logger.warning(
                "The server at %s does not take tRPC batches; sending calls one by one.", where
            )

    def callers_default_headers(self) -> list[tuple[bytes, bytes]] | None:
        """The default headers of your ``http_client`` (``None`` for a pool of ours)."""
        return None
