"""Companies: ``companies.*`` results."""

from __future__ import annotations

from datetime import datetime

from ._base import BaseModel, MatchedBy, SmartLinkStatus


class Company(BaseModel):
    """A customer company."""

    id: str
    """The company's id: pass it as ``company_id`` to the other calls."""
    short_id: str
    """A readable unique slug made from the name (e.g. ``"acme-inc"``, or ``"acme-inc-2"``
    when that is taken)."""
    name: str
    """The company's name."""
    domain: str | None
    """The company's web domain (e.g. ``"acme.com"``); ``None`` when not known."""
    created_at: datetime
    """When the company was created (an aware ``datetime``), or the historical date given as
    ``created_at`` when it was created or updated."""


class Suggestion(BaseModel):
    """A company ``smart_link`` thinks may be the one, with its confidence (0–100)."""

    company_id: str
    """The id of the suggested company."""
    name: str
    """The suggested company's name."""
    domain: str | None
    """The suggested company's web domain; ``None`` when not known."""
    confidence: float
    """How well it matches the hints, a percentage (0–100): 95 for the domain, 70 for an
    e-mail's domain, up to 80 for the name."""
    matched_by: MatchedBy
    """The hint that matched best: ``"domain"``, ``"name"`` or ``"email_domain"`` (the domain
    of one of the hint e-mails)."""


class SmartLinkResult(BaseModel):
    """The outcome of ``companies.smart_link``; ``confidence`` is a percentage (0–100)."""

    status: SmartLinkStatus
    """``"already_linked"`` (the org id was linked before), ``"linked"`` (one company matched
    well enough and is linked now), ``"suggestions"`` (candidates, nothing linked) or
    ``"no_match"`` (no candidate, nothing linked)."""
    company_id: str | None
    """The id of the linked company; ``None`` when nothing is linked (``"suggestions"``,
    ``"no_match"``)."""
    customer_name: str | None
    """The name of the linked company; ``None`` when nothing is linked."""
    confidence: float | None
    """How well the linked company matched, a percentage (0–100); ``None`` when nothing is
    linked."""
    suggestions: list[Suggestion]
    """With ``"suggestions"``: the candidates, best first (at most 5); empty otherwise."""
