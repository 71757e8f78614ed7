"""One encoded request, as every transport takes it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import httpx

from .._urls import URLJoiner

__all__ = ["WireRequest"]


class WireRequest:
    """An encoded tRPC request: what the request loop hands to a transport's ``send``.

    ``target`` is the URL relative to the base URL (``"features.check?input=..."``), ``url``
    joins it onto the base URL. An HTTP transport sends :meth:`build` with its client's
    library (httpx or httpx2, whose requests are distinct types); an in-process server takes
    ``method``, ``target``, ``headers`` and ``content`` as they are, so no request object is
    built for it (that re-parses a long ``?input=`` URL). The headers are an
    :class:`httpx.Headers`, whose ``repr`` masks the ``Authorization``.
    """

    __slots__ = ("_built", "_url", "content", "extensions", "headers", "method", "target")

    def __init__(
        self,
        method: str,
        target: str,
        url: URLJoiner,
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
        self._built: Any = None

    def __repr__(self) -> str:
        return f"<WireRequest {self.method} {self.target[:80]!r}>"

    def to_httpx(self) -> httpx.Request:
        """The :class:`httpx.Request` (built on first use, then kept)."""
        request: httpx.Request = self.build(httpx)
        return request

    def build(self, library: ModuleType) -> Any:
        """The request as ``library`` (httpx or httpx2) sends it: built on first use, then
        kept (again when asked for another library's)."""
        request = self._built
        if request is None or not isinstance(request, library.Request):
            headers = self.headers if library is httpx else self.headers.raw
            request = self._built = library.Request(
                self.method,
                self._url.using(library)(self.target),
                headers=headers,
                content=self.content,
                extensions=self.extensions,
            )
        return request

    @property
    def sent(self) -> httpx.Request:
        """The request as last built (for errors): the library's own, or an httpx one."""
        request: httpx.Request = self._built if self._built is not None else self.to_httpx()
        return request
