"""Companies: ``companies.*`` results."""

from __future__ import annotations

from datetime import datetime

from ._base import BaseModel, MatchedBy, SmartLinkStatus


class Company(BaseModel):
    """A customer company."""

    id: str
    short_id: str
    name: str
    domain: str | None
    created_at: datetime


class Suggestion(BaseModel):
    """A company ``smart_link`` thinks may be the one, with its confidence (0–100)."""

    company_id: str
    name: str
    domain: str | None
    confidence: float
    matched_by: MatchedBy


class SmartLinkResult(BaseModel):
    """The outcome of ``companies.smart_link``; ``confidence`` is a percentage (0–100)."""

    status: SmartLinkStatus
    company_id: str | None
    customer_name: str | None
    confidence: float | None
    suggestions: list[Suggestion]
