"""Request URLs without re-parsing: a procedure path and its query joined onto the base URL.

``httpx.URL(text)`` re-validates and re-quotes the whole URL on every request (a third of
a call's own cost for a query with a long ``?input=``). Our relative part is always plain
ASCII that :func:`chatarmin_os._wire.encode_uri_component` already percent-encoded, so the
base URL is parsed once and each request's URL is that parse with another path and query.
Should httpx's internals ever differ from what this expects, the joiner falls back to
``httpx.URL(text)`` (checked once per base URL against a sample).
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

__all__ = ["url_joiner"]

_SAMPLE = "features.check?input=%7B%22companyId%22%3A%22c%201%22%7D"


def url_joiner(base: httpx.URL) -> Callable[[str], httpx.URL]:
    """A function turning ``"path?query"`` (encoded, relative) into ``base`` joined with it."""
    prefix = str(base)

    def parse(relative: str) -> httpx.URL:
        return httpx.URL(prefix + relative)

    try:
        reference = base._uri_reference
        base_path = reference.path

        def join(relative: str) -> httpx.URL:
            path, has_query, query = relative.partition("?")
            url = httpx.URL.__new__(httpx.URL)
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
