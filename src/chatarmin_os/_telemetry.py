"""OpenTelemetry: a span per call, through your tracer provider (extra ``chatarmin-os[otel]``).

Nothing happens unless ``opentelemetry-api`` is installed *and* a tracer provider has been
set (``opentelemetry.trace.set_tracer_provider(...)``, or ``OTEL_PYTHON_TRACER_PROVIDER``
with ``opentelemetry-instrument``): without one, the SDK never imports OpenTelemetry, so it
costs nothing. Each call becomes one ``CLIENT`` span named ``chatarmin_os <procedure>``:

=================================  ===================================================
attribute                          value
=================================  ===================================================
``rpc.system``                     ``"trpc"``
``rpc.method``                     the procedure, e.g. ``"features.check"``
``chatarmin_os.kind``              ``"query"`` or ``"mutation"``
``server.address``                 the API's host
``http.response.status_code``      the call's own status (in a batch: its item's)
``chatarmin_os.retries``           how many times it was sent again
``chatarmin_os.batch_size``        how many calls shared its request (1: alone)
``chatarmin_os.cache_source``      ``"cache"``/``"stale"``/``"fallback"`` on the ``INTERNAL``
                                   span of an answer the entitlement cache gave
``error.type``                     the exception class when the call failed
=================================  ===================================================

A failed call also records its exception on the span and sets the span's status to error.
Messages never hold the API key, and neither do attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["current_tracer", "record_cached", "span"]

_NAME = "chatarmin_os"
_provider: Any = None
_tracer: Any = None


def current_tracer() -> Tracer | None:
    """The tracer of the global provider, or ``None`` when there is none to report to."""
    global _provider, _tracer
    # Whoever set a tracer provider imported this module: never import it ourselves.
    trace: Any = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = getattr(trace, "_TRACER_PROVIDER", None)
    if provider is None:
        if not hasattr(trace, "_TRACER_PROVIDER"):  # another API version: ask it
            provider = trace.get_tracer_provider()
            if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
                return None
        else:
            return None  # no provider set: nobody listens
    if provider is not _provider:
        _provider, _tracer = provider, provider.get_tracer(_NAME, __version__)
    return _tracer  # type: ignore[no-any-return]


@contextmanager
def span(tracer: Tracer, procedure: str, kind: str, host: str) -> Iterator[Span]:
    """A ``CLIENT`` span around one call; exceptions are recorded and set its status."""
    from opentelemetry.trace import SpanKind

    attributes = {
        "rpc.system": "trpc",
        "rpc.method": procedure,
        "chatarmin_os.kind": kind,
        "server.address": host,
    }
    with tracer.start_as_current_span(
        f"{_NAME} {procedure}", kind=SpanKind.CLIENT, attributes=attributes
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            raise


_PROCEDURES_BY_KEY = {
    "c": "features.check",
    "oc": "features.checkByExternalOrgId",
    "l": "features.listAccess",
    "a": "features.getAccessByExternalOrgId",
    "o": "companies.getByProductLink",
}


def record_cached(key_kind: str, source: str) -> None:
    """A span for an answer the entitlement cache gave (``source``: cache, stale, fallback).

    ``key_kind`` is the cache key's first part (``"c"`` for a check, ...). An ``INTERNAL``
    span: no request was made.
    """
    tracer = current_tracer()
    if tracer is None:
        return
    from opentelemetry.trace import SpanKind

    procedure = _PROCEDURES_BY_KEY.get(key_kind, key_kind)
    tracer.start_span(
        f"{_NAME} {procedure}",
        kind=SpanKind.INTERNAL,
        attributes={
            "rpc.system": "trpc",
            "rpc.method": procedure,
            "chatarmin_os.kind": "query",
            "chatarmin_os.cache_source": source,
        },
    ).end()
