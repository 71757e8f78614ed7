"""What a batch's answers mean for its events: :func:`judge` makes a :class:`Settlement`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from .._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    ChatarminOSError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from .policy import classify

if TYPE_CHECKING:
    from .._models import UsageResult
    from .events import UsageEvent

__all__ = ["BatchFailure", "SendOutcome", "Settlement", "judge"]

SendOutcome: TypeAlias = "tuple[UsageResult | ChatarminOSError, str | None]"
"""An event's answer (a result or an error) and the company it was counted for."""
BatchFailure: TypeAlias = "tuple[ChatarminOSError, Mapping[str, str] | None, bool, int]"
"""How a batch failed: the first error, the headers of an answer, 401?, events kept."""


@dataclass
class Settlement:
    """What a batch's answers mean: for the store, the counters and the listeners."""

    done: list[UsageEvent] = field(default_factory=list)
    again: list[UsageEvent] = field(default_factory=list)
    answered: list[tuple[UsageEvent, str, UsageResult]] = field(default_factory=list)
    refused: list[tuple[UsageEvent, ChatarminOSError]] = field(default_factory=list)
    over: list[tuple[str, str]] = field(default_factory=list)  # (company, feature) at a limit
    finals: list[tuple[UsageEvent, UsageResult | ChatarminOSError]] = field(default_factory=list)
    """The answered and refused events with their outcome, in batch order."""
    failure: ChatarminOSError | None = None
    headers: Mapping[str, str] | None = None
    auth: bool = False

    def as_failure(self) -> BatchFailure | None:
        """How the batch failed, when some events are to be sent again."""
        if self.failure is None:
            return None
        return self.failure, self.headers, self.auth, len(self.again)


def judge(batch: list[UsageEvent], outcomes: list[SendOutcome]) -> Settlement:
    """What a batch's answers mean for each event."""
    settled = Settlement()
    for event, (result, company_id) in zip(batch, outcomes, strict=True):
        if not isinstance(result, ChatarminOSError):
            settled.done.append(event)
            assert company_id is not None
            settled.answered.append((event, company_id, result))
            settled.finals.append((event, result))
            continue
        outcome = classify(result)
        if outcome == "refused":
            settled.done.append(event)
            settled.refused.append((event, result))
            settled.finals.append((event, result))
            if company_id is not None and isinstance(
                result, (PreconditionFailedError, PermissionDeniedError)
            ):
                settled.over.append((company_id, event.feature_code))
            continue
        settled.again.append(event)
        settled.auth = settled.auth or outcome == "auth"
        if settled.failure is None:
            settled.failure = result
        if settled.headers is None and isinstance(
            result, (APIStatusError, APIResponseValidationError)
        ):
            settled.headers = result.response.headers
    return settled
