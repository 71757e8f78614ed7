"""The errors a reservation is refused with: the ones ``billing.track_usage`` raises for the
same reasons, so one ``except`` serves both calls."""

from __future__ import annotations

import httpx

from .._exceptions import PermissionDeniedError, PreconditionFailedError

__all__ = ["limit_reached", "not_enabled"]

PATH = "billing.reserve"


def _answer(status: int, url: str) -> httpx.Response:
    # No request went out: an answer made here, so the error carries what a server's would.
    return httpx.Response(status, request=httpx.Request("POST", url))


def limit_reached(
    feature_code: str, quantity: int, remaining: int | None, limit: int | None, url: str
) -> PreconditionFailedError:
    """Holding ``quantity`` more would pass the limit."""
    left = max(remaining or 0, 0)
    message = (
        f"Usage limit reached for {feature_code}: {quantity} requested, {left} of {limit} left "
        "(usage, holds and usage in flight counted)"
    )
    return PreconditionFailedError(
        message, response=_answer(412, url), path=PATH, code="PRECONDITION_FAILED"
    )


def not_enabled(feature_code: str, url: str) -> PermissionDeniedError:
    """The feature is not enabled for the company."""
    return PermissionDeniedError(
        f"Feature {feature_code} is not enabled for this company",
        response=_answer(403, url),
        path=PATH,
        code="FORBIDDEN",
    )
