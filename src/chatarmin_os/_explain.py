"""An SDK error explained in one line for a person at a command line, and which errors
mean the setup is wrong rather than one call.

A wrong base URL (``…/api`` instead of ``…/api/v1``: the server has no such procedure), an
answer that is not tRPC at all (a web page, a proxy), or a refused API key fail every call
alike (:func:`is_run_wide`): the importer stops at the first one, and the commands say what
to fix. :func:`stop_reason` is the one line a person reads: the cause, the URL, and what to
do (``OS_API_KEY``, ``--base-url`` / ``CHATARMIN_OS_BASE_URL``).
"""

from __future__ import annotations

import httpx

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    ChatarminOSError,
)

__all__ = ["is_run_wide", "is_unreachable", "stop_reason"]

_NO_PROCEDURE = ("no procedure found on path", "-procedure on path")
_BASE_URL_HINT = "check --base-url / CHATARMIN_OS_BASE_URL (it usually ends in /api/v1)"


def _no_procedure(error: APIStatusError) -> bool:
    if error.code is None:
        return error.status_code in (404, 405)
    text = (error.message or "").casefold()
    return error.code == "NOT_FOUND" and any(marker in text for marker in _NO_PROCEDURE)


def _not_trpc(error: ChatarminOSError) -> bool:
    """An answer with no tRPC envelope (a web page, a proxy's error) that is not a 5xx."""
    if isinstance(error, APIResponseValidationError):
        return True
    return isinstance(error, APIStatusError) and error.code is None and error.status_code < 500


def is_run_wide(error: ChatarminOSError | None) -> bool:
    """Whether ``error`` would fail every row alike: a refused key, no such procedure at the
    base URL, or an answer that is not tRPC."""
    if isinstance(error, AuthenticationError):
        return True
    if isinstance(error, APIStatusError) and _no_procedure(error):
        return True
    return error is not None and _not_trpc(error)


def is_unreachable(error: ChatarminOSError | None) -> bool:
    """The API could not be reached: a connection error, or a 5xx that is not tRPC (a
    gateway's page) after the client's retries."""
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIStatusError) and error.code is None and error.status_code >= 500


def _url(error: ChatarminOSError) -> str | None:
    request: httpx.Request | None = getattr(error, "request", None)
    response: httpx.Response | None = getattr(error, "response", None)
    if request is None and response is not None:
        try:
            request = response.request
        except RuntimeError:
            request = None
    if request is None:
        return None
    url = request.url.copy_with(query=None, fragment=None)
    return str(url.copy_with(username=None, password=None))


def stop_reason(error: ChatarminOSError) -> str:
    """One line for a person: what went wrong, at which URL, and what to do."""
    url = _url(error)
    at = f" at {url}" if url else ""
    if isinstance(error, AuthenticationError):
        return (
            f"the API{at} refused the API key ({error.status_code} {error.code or ''}: "
            f"{error.message}); set OS_API_KEY to a valid key for this API".replace(" :", ":")
        )
    if isinstance(error, APIStatusError) and _no_procedure(error):
        return (
            f"no procedure {error.path!r}{at} ({error.status_code} {error.code or 'not tRPC'}); "
            f"the base URL is wrong: {_BASE_URL_HINT}"
        )
    if _not_trpc(error):
        status = getattr(error, "status_code", None)
        response: httpx.Response | None = getattr(error, "response", None)
        kind = response.headers.get("content-type", "no content type") if response else ""
        return (
            f"the answer{at} is not a ChatarminOS (tRPC) answer (HTTP {status}, {kind}); "
            f"{_BASE_URL_HINT}"
        )
    if is_unreachable(error):
        return f"cannot reach the API{at}: {' '.join(str(error).split())}"
    return " ".join(str(error).split())
