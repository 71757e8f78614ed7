"""``UsageEvent``: one buffered ``billing.trackUsage`` input and its bookkeeping."""

from __future__ import annotations

from typing import Any

__all__ = ["UsageEvent"]


class UsageEvent:
    """One usage event of the buffer: what ``on_error`` receives.

    ``company_id`` or ``external_org_id`` (the other is ``None``), ``feature_code``,
    ``quantity``, ``idempotency_key``, ``metadata``; ``created_at`` is when it was enqueued
    (seconds since the epoch), ``attempts`` how often it was sent without an answer.
    """

    __slots__ = ("attempts", "created_at", "payload", "seq")

    def __init__(
        self, payload: dict[str, Any], created_at: float, seq: int, attempts: int = 0
    ) -> None:
        self.payload = payload
        """The ``billing.trackUsage`` input (``externalOrgId`` until it is resolved)."""
        self.created_at = created_at
        self.seq = seq
        self.attempts = attempts

    @property
    def idempotency_key(self) -> str:
        """The key the server counts the event under (fixed when it was enqueued)."""
        return str(self.payload["idempotencyKey"])

    @property
    def company_id(self) -> str | None:
        """The company, when the event was given one."""
        return self.payload.get("companyId")

    @property
    def external_org_id(self) -> str | None:
        """Your org id, when the event was given one instead of a company id."""
        return self.payload.get("externalOrgId")

    @property
    def feature_code(self) -> str:
        """The metered feature."""
        return str(self.payload["featureCode"])

    @property
    def quantity(self) -> int:
        """How much was used."""
        return int(self.payload["quantity"])

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The event's metadata, if any."""
        return self.payload.get("metadata")

    def __repr__(self) -> str:
        who = (
            f"company_id={self.company_id!r}"
            if self.company_id is not None
            else f"external_org_id={self.external_org_id!r}"
        )
        return (
            f"UsageEvent({who}, feature_code={self.feature_code!r}, quantity={self.quantity}, "
            f"idempotency_key={self.idempotency_key!r})"
        )
