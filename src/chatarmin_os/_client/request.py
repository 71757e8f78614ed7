"""One encoded request, as every transport takes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["WireRequest"]


class WireRequest:
    """An encoded tRPC request: what the request loop hands to a transport's ``send``.

    ``target`` is the URL relative to the base URL (``"features.check?input=..."``), ``url``
    joins it onto the base URL. An HTTP transport sends :meth:`to_httpx`; an in-process
    server takes ``method``, ``target``, ``headers`` and ``content`` as they are, so no
    :class:`httpx.Request` is built for it (that re-parses a long ``?input=`` URL). The
    headers are an :class:`httpx.Headers`, whose ``repr`` masks the ``Authorization``.
    """

    __slots__ = ("_httpx", "_url", "content", "extensions", "headers", "method", "target")

    def __init__(
        self,
        method: str,
        target: str,
        url: Callable[[str], httpx.URL],
        headers: httpx.Headers,
        content: bytes | None,
        extensions: dict[str, Any],
    ) -> None:
        self.method = method
        self.target = target
        self._url = url
        self.headers = headers
        self.content = content
        self.extensions = extensions
        self._httpx: httpx.Request | None = None

    def __repr__(self) -> str:
        return f"<WireRequest {self.method} {self.target[:80]!r}>"

    def to_httpx(self) -> httpx.Request:
        """The :class:`httpx.Request` (built on first use, then kept)."""
        request = self._httpx
        if request is None:
            request = self._httpx = httpx.Request(
                self.method,
                self._url(self.target),
                headers=self.headers,
                content=self.content,
                extensions=self.extensions,
            )
        return request
