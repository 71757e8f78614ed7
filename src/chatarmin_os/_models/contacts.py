"""Contacts: ``contacts.*`` results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import BaseModel


class Contact(BaseModel):
    """A person at a company."""

    id: str
    company_id: str
    email: str
    name: str | None
    role: str | None
    is_primary: bool
    avatar_url: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class UpsertedContact(Contact):
    """A contact after ``contacts.create`` / ``bulk_upsert``; ``is_new`` when it was created."""

    is_new: bool


class BulkUpsertResult(BaseModel):
    """The outcome of ``contacts.bulk_upsert``."""

    created: int
    updated: int
    contacts: list[UpsertedContact]
