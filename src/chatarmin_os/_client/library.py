"""Which HTTP library a pool sends with: httpx, or its maintained fork httpx2.

Both have the same API under different module names, and their classes are distinct: an
``httpx.Request`` cannot be sent through an ``httpx2`` client, and an ``httpx2.ReadTimeout``
is not an ``httpx.TimeoutException``. So:

* **Our own pools** are made with :func:`preferred`: httpx2 when it is installed (the
  ``httpx2`` extra), httpx otherwise; the ``CHATARMIN_OS_HTTP_LIBRARY`` environment variable
  (``httpx`` or ``httpx2``) forces one.
* **Your** ``http_client`` may be either library's client (:func:`accepts`); a request is
  built with the library of the client it goes through (:func:`of`).
* **Errors** of either library map the same way (:func:`of_error`).

httpx2 is imported only when it is preferred (the first time a pool of ours is made) or
when it is already imported (your client, its errors): ``import chatarmin_os`` never loads it.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

import httpx

from .._exceptions import ConfigurationError

__all__ = ["ENV_VAR", "LIBRARIES", "accepts", "of", "of_error", "preferred"]

ENV_VAR = "CHATARMIN_OS_HTTP_LIBRARY"
"""Forces the library of our own pools: ``httpx`` or ``httpx2`` (unset: httpx2 when installed)."""

LIBRARIES = ("httpx", "httpx2")

_by_type: dict[type, ModuleType | None] = {}


def _httpx2() -> ModuleType | None:
    """The httpx2 module when something imported it already (never imports it)."""
    return sys.modules.get("httpx2")


def preferred() -> ModuleType:
    """The library our own pools are made with: httpx2 when installed, else httpx."""
    choice = os.environ.get(ENV_VAR, "").strip().lower()
    if choice == "httpx":
        return httpx
    if choice not in ("", "httpx2"):
        raise ConfigurationError(f"{ENV_VAR} must be 'httpx' or 'httpx2', got {choice[:40]!r}")
    try:
        import httpx2
    except ImportError:
        if choice:
            raise ConfigurationError(
                f"{ENV_VAR}=httpx2, but httpx2 is not installed "
                "(pip install 'chatarmin-os[httpx2]', Python 3.11+)"
            ) from None
        return httpx
    return httpx2


def of(client: Any) -> ModuleType | None:
    """The library ``client`` belongs to (a client, request or response), or ``None``."""
    kind = type(client)
    try:
        return _by_type[kind]
    except KeyError:
        pass
    found: ModuleType | None = None
    for library in (httpx, _httpx2()):
        if library is not None and isinstance(
            client, (library.Client, library.AsyncClient, library.Request, library.Response)
        ):
            found = library
            break
    _by_type[kind] = found  # (an httpx2 type cannot exist before httpx2 is imported)
    return found


def accepts(client: Any, name: str) -> bool:
    """Whether ``client`` is an ``httpx.<name>`` or an ``httpx2.<name>`` (``"Client"`` or
    ``"AsyncClient"``)."""
    return any(
        library is not None and isinstance(client, getattr(library, name))
        for library in (httpx, _httpx2())
    )


def of_error(exc: BaseException) -> ModuleType | None:
    """The library whose exception ``exc`` is (an ``HTTPError``, ``InvalidURL`` or stream
    error of httpx or httpx2), or ``None``."""
    for library in (httpx, _httpx2()):
        if library is not None and isinstance(
            exc, (library.HTTPError, library.InvalidURL, library.StreamError)
        ):
            return library
    return None
