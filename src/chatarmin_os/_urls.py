"""Request URLs without re-parsing: a procedure path and its query joined onto the base URL.

``httpx.URL(text)`` re-validates and re-quotes the whole URL on every request (a third of
a call's own cost for a query with a long ``?input=``). Our relative part is always plain
ASCII that :func:`chatarmin_os._wire.encode_uri_component` already percent-encoded, so the
base URL is parsed once and each request's URL is that parse with another path and query.
Should the library's internals ever differ from what this expects, the joiner falls back to
``URL(text)`` (checked once per base URL and library against a sample). httpx and httpx2
(whose ``URL`` classes are distinct) each get their own joiner: :class:`URLJoiner`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx

__all__ = ["URLJoiner", "url_joiner"]

_SAMPLE = "features.check?input=%7B%22companyId%22%3A%22c%201%22%7D"


def url_joiner(base: httpx.URL, library: ModuleType = httpx) -> Callable[[str], Any]:
    """A function turning ``"path?query"`` (encoded, relative) into ``base`` joined with it,
    as a ``library.URL`` (``library`` is httpx or httpx2)."""
    prefix = str(base)
    url_class = library.URL

    def parse(relative: str) -> Any:
        return url_class(prefix + relative)

    try:
        reference = url_class(prefix)._uri_reference
        base_path = reference.path

        def join(relative: str) -> Any:
            path, has_query, query = relative.partition("?")
            url = url_class.__new__(url_class)
            url._uri_reference = reference._replace(
                path=base_path + path, query=query if has_query else None
            )
            return url

        for sample in (_SAMPLE, "tiers.list"):
            fast, slow = join(sample), parse(sample)
            if fast != slow or fast.raw_path != slow.raw_path or str(fast) != str(slow):
                return parse
    except Exception:  # another httpx: parse every time
        return parse
    return join


class URLJoiner:
    """The base URL's joiners: called, an ``httpx.URL``; :meth:`using` another library's."""

    __slots__ = ("_base", "_httpx", "_others", "prefix")

    def __init__(self, base: httpx.URL) -> None:
        self._base = base
        self.prefix = str(base)
        """The base URL as text: ``prefix + relative`` is the whole URL."""
        self._httpx: Callable[[str], httpx.URL] = url_joiner(base)
        self._others: dict[str, Callable[[str], Any]] = {}

    @property
    def base(self) -> httpx.URL:
        """The base URL."""
        return self._base

    def __call__(self, relative: str) -> httpx.URL:
        return self._httpx(relative)

    def using(self, library: ModuleType) -> Callable[[str], Any]:
        """The joiner making ``library.URL`` objects (made on first use, then kept)."""
        if library is httpx:
            return self._httpx
        join = self._others.get(library.__name__)
        if join is None:
            join = self._others[library.__name__] = url_joiner(self._base, library)
        return join
