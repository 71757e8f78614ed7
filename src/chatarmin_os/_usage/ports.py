"""What a usage buffer is given instead of its client: the callables it sends and reports
through, in an async and a blocking flavour (``scripts/gen_sync.py`` maps the names).

* ``send(inputs)``: each ``billing.trackUsage`` input's result or error, the inputs sent as
  one tRPC batch request, without retries (the buffer retries); raises
  ``InvalidInputError`` when an input cannot be encoded and ``ChatarminOSError`` when the
  client cannot send at all (closed);
* ``find_companies(orgs)``: for each external org id the linked company (anything with an
  ``id``), ``None`` when none is linked, or the error of the lookup;
* ``answered(company_id, feature_code, result)``: ChatarminOS counted an event (the cache
  keeps cached quotas exact with it); ``refused(company_id, feature_code)``: an event hit a
  limit or a disabled feature (the next check asks);
* ``acknowledged(event, outcome)``: an event's final outcome, once: its
  :class:`~chatarmin_os._models.UsageResult`, or the error it was refused or dropped with
  (what a quota ledger uses to move usage from "in flight" to "reported").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

if TYPE_CHECKING:
    from .._exceptions import ChatarminOSError
    from .._models import Company, UsageResult
    from .events import UsageEvent

__all__ = [
    "AsyncFindCompanies",
    "AsyncSendUsage",
    "AsyncUsageAcknowledged",
    "AsyncUsageAnswered",
    "AsyncUsageRefused",
    "FindCompanies",
    "OnFirstUse",
    "SendUsage",
    "UsageAcknowledged",
    "UsageAnswered",
    "UsageRefused",
]

SendResults: TypeAlias = "list[UsageResult | ChatarminOSError]"
Companies: TypeAlias = "list[Company | ChatarminOSError | None]"
Outcome: TypeAlias = "UsageResult | ChatarminOSError"

AsyncSendUsage: TypeAlias = Callable[[list[dict[str, Any]]], Awaitable[SendResults]]
SendUsage: TypeAlias = Callable[[list[dict[str, Any]]], SendResults]
AsyncFindCompanies: TypeAlias = Callable[[list[str]], Awaitable[Companies]]
FindCompanies: TypeAlias = Callable[[list[str]], Companies]
AsyncUsageAnswered: TypeAlias = Callable[[str, str, "UsageResult"], Awaitable[None]]
UsageAnswered: TypeAlias = Callable[[str, str, "UsageResult"], None]
AsyncUsageRefused: TypeAlias = Callable[[str, str], Awaitable[None]]
UsageRefused: TypeAlias = Callable[[str, str], None]
AsyncUsageAcknowledged: TypeAlias = Callable[["UsageEvent", Outcome], Awaitable[None]]
UsageAcknowledged: TypeAlias = Callable[["UsageEvent", Outcome], None]


T = TypeVar("T")


class OnFirstUse(Generic[T]):
    """``make()``'s value, made when first asked for (e.g. the client copy a buffer sends
    through: made once the client is complete, after ``local()`` gave it its transport)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None

    def __call__(self) -> T:
        value = self._value
        if value is None:  # two first callers at once may both make one: either will do
            value = self._value = self._make()
        return value
