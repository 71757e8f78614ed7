"""``with_raw_response``: a method made to return an :class:`~chatarmin_os.APIResponse`.

Hand-written; ``scripts/gen_sync.py`` turns it into ``_sync/_raw.py``.
"""

from __future__ import annotations

from typing import ParamSpec, TypeVar

from .._client.raw import APIResponse, start_capture, stop_capture
from .._concurrency import AsyncMethod

__all__ = ["to_raw_response_wrapper"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


def to_raw_response_wrapper(
    method: AsyncMethod[_P, _T],
) -> AsyncMethod[_P, APIResponse[_T]]:
    """``method`` returning the :class:`~chatarmin_os.APIResponse` of its (last) request,
    whose ``parse()`` is the method's result. The call is never answered from the cache."""

    async def raw(*args: _P.args, **kwargs: _P.kwargs) -> APIResponse[_T]:
        capture, token = start_capture()
        try:
            result = await method(*args, **kwargs)
        finally:
            stop_capture(token)
        return capture.response(result)

    raw.__name__ = getattr(method, "__name__", "raw")
    raw.__doc__ = getattr(method, "__doc__", None)
    return raw
