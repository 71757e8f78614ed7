"""Contacts: ``contacts.*`` results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import BaseModel


class Contact(BaseModel):
    """A person at a company."""

    id: str
    """The contact's id."""
    company_id: str
    """The id of the company the contact belongs to."""
    email: str
    """The contact's e-mail address; within a company, contacts are matched by it
    (case-insensitively)."""
    name: str | None
    """The contact's name; ``None`` when not set."""
    role: str | None
    """The contact's role at the company (e.g. ``"CEO"``); ``None`` when not set."""
    is_primary: bool
    """``True`` for the company's primary contact (a company has at most one)."""
    avatar_url: str | None
    """The URL of the contact's picture; ``None`` when not set."""
    metadata: dict[str, Any]
    """Your own data about the contact, as you sent it (keys are not renamed); ``{}`` when
    none."""
    created_at: datetime
    """When the contact was created (an aware ``datetime``)."""
    updated_at: datetime
    """When the contact was last changed (an aware ``datetime``)."""


class UpsertedContact(Contact):
    """A contact after ``contacts.create`` / ``bulk_upsert``; ``is_new`` when it was created."""

    is_new: bool
    """``True`` when this call created the contact; ``False`` when it updated the company's
    contact with the same e-mail address."""


class BulkUpsertResult(BaseModel):
    """The outcome of ``contacts.bulk_upsert``."""

    created: int
    """How many contacts this call created."""
    updated: int
    """How many existing contacts this call updated."""
    contacts: list[UpsertedContact]
    """Every contact of the call, in the order given, as it is after the call."""
