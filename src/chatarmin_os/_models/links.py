"""Product links: ``links.*`` results."""

from __future__ import annotations

from datetime import datetime

from ._base import BaseModel


class ProductLink(BaseModel):
    """A link between your product's org id and a company."""

    id: str
    """The link's id."""
    company_id: str
    """The id of the linked company."""
    external_org_id: str
    """Your product's id of the organisation (e.g. ``"org_abc123"``)."""
    label: str | None
    """The link's display label (e.g. your product's name); ``None`` when not given."""
    external_user_id: str | None
    """Your product's id of the user who made the link; ``None`` when not given."""
    created_at: datetime
    """When the link was made (an aware ``datetime``)."""


class ResetLinksResult(BaseModel):
    """The outcome of ``links.reset``."""

    links_deleted: int
    """How many of your product's links were deleted."""
    contacts_deleted: int
    """How many contacts of the linked companies were deleted (0 unless
    ``delete_contacts=True``)."""
    mrr_reset: bool
    """``True`` when the linked companies' MRR figures were reset (``reset_mrr=True``)."""
