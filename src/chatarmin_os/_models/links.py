"""Product links: ``links.*`` results."""

from __future__ import annotations

from datetime import datetime

from ._base import BaseModel


class ProductLink(BaseModel):
    """A link between your product's org id and a company."""

    id: str
    company_id: str
    external_org_id: str
    label: str | None
    external_user_id: str | None
    created_at: datetime


class ResetLinksResult(BaseModel):
    """The outcome of ``links.reset``."""

    links_deleted: int
    contacts_deleted: int
    mrr_reset: bool
