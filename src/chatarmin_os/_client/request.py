"""One encoded request, as every transport takes it, and the library request built from it."""

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

    @property
    def base_url(self) -> httpx.URL:
        """The base URL the target is relative to."""
        return self._url.base

    @property
    def url_text(self) -> str:
        """The whole URL as text (encoded), without building a URL object."""
        return self._url.prefix + self.target

    def to_httpx(self) -> httpx.Request:
        """The :class:`httpx.Request` (built on first use, then kept)."""
        request: httpx.Request = self.build(httpx)
        return request

    def build(self, library: ModuleType) -> Any:
        """The request as ``library`` (httpx or httpx2) sends it: built on first use, then
        kept (again when asked for another library's)."""
        request = self._built
        if request is None or not isinstance(request, library.Request):
            url = self._url.using(library)(self.target)
            request = self._built = _builder(library).build(
                self.method, url, self.headers, self.content, self.extensions
            )
        return request

    @property
    def sent(self) -> Any:
        """The request as last built (for errors): its library's own, else an httpx one."""
        return self._built if self._built is not None else self.to_httpx()


class _Builder:
    """Builds ``library.Request(method, url, headers=..., content=..., extensions=...)``
    without normalising the same headers again on every call.

    ``Request(...)`` checks and lower-cases every header, then copies them all again to put
    ``Host`` (and ``Content-Length``) in front: most of what building a request costs. A
    client's headers are the same objects call after call, so the headers a request ends up
    with are prepared once per headers object, host and method (a template), and each
    request starts from a copy of them. The first request of a template is built both ways
    and compared; should they ever differ (another version of the library), or the headers
    hold one the library sets itself (``Host``, ``Content-Length``), that template is built
    the library's own way from then on.
    """

    _MAX_TEMPLATES = 64

    def __init__(self, library: ModuleType) -> None:
        self.library = library
        # (id(headers), netloc, method) -> (headers, template or None: build the slow way)
        self._templates: dict[tuple[int, bytes, str], tuple[httpx.Headers, Any]] = {}

    def build(
        self,
        method: str,
        url: Any,
        headers: httpx.Headers,
        content: bytes | None,
        extensions: dict[str, Any],
    ) -> Any:
        key = (id(headers), url.netloc, method)
        entry = self._templates.get(key)
        if entry is not None and entry[0] is headers:
            template = entry[1]
            if template is not None:
                return self._fast(template, method, url, content, extensions)
            return self._slow(method, url, headers, content, extensions)
        request = self._slow(method, url, headers, content, extensions)
        template = self.library.Headers(
            [(b"Host", request.headers.raw[0][1]), *headers.raw]
            if request.headers.raw and request.headers.raw[0][0] == b"Host"
            else headers.raw
        )
        fast = self._fast(template, method, url, content, extensions)
        same = (
            not any(name.lower() in _LIBRARY_SET for name, _ in headers.raw)
            and fast.method == request.method
            and fast.url == request.url
            and fast.headers.raw == request.headers.raw
            and fast.content == request.content
            and fast.extensions == request.extensions
        )
        if len(self._templates) >= self._MAX_TEMPLATES:
            self._templates.clear()  # clients come and go: keep the live ones' only
        self._templates[key] = (headers, template if same else None)
        return request

    def _slow(
        self,
        method: str,
        url: Any,
        headers: httpx.Headers,
        content: bytes | None,
        extensions: dict[str, Any],
    ) -> Any:
        library = self.library
        return library.Request(
            method,
            url,
            headers=headers if library is httpx else headers.raw,
            content=content,
            extensions=extensions,
        )

    def _fast(
        self, template: Any, method: str, url: Any, content: bytes | None, ext: dict[str, Any]
    ) -> Any:
        library = self.library
        headers = template
        if content is not None:
            headers = library.Headers(template)  # a copy: no normalising
            headers["Content-Length"] = str(len(content))
        # With ``stream=`` the library adds no headers of its own: the template has them.
        request = library.Request(
            method, url, headers=headers, stream=library.ByteStream(content or b""), extensions=ext
        )
        request.read()
        return request


# Headers the library sets itself unless given: given, a request is built the library's way.
_LIBRARY_SET = frozenset({b"host", b"content-length", b"transfer-encoding"})

_builders: dict[str, _Builder] = {}


def _builder(library: ModuleType) -> _Builder:
    builder = _builders.get(library.__name__)
    if builder is None:
        builder = _builders[library.__name__] = _Builder(library)
    return builder
