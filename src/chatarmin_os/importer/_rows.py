"""One organisation: the :class:`Organisation` to onboard, and the checks of a row that build it.

Rows have ``id`` (a string, or an integer turned into one), ``name``, and optionally
``domain``, ``plan``, ``adminEmail``, ``createdAt`` (ISO-8601 with an offset) and ``users``
(a list of ``{email, name?, role?}``). camelCase and snake_case keys are both accepted
(``admin_email``, ``created_at``); other keys are ignored. ``null`` and empty strings count
as not given; strings are stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .._exceptions import InvalidInputError
from .._inputs import ContactInput, HintsDict, OnboardInput
from .._validate import model_input, require_str, show, timestamp

__all__ = ["FIELD_KEYS", "Organisation", "org_id_of", "parse_organisation"]

# An e-mail address as the API takes one (local@domain.tld, no whitespace), checked here so
# that a bad address fails its row before anything is sent for it.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.][^@\s]*$")

FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "id": ("id",),
    "name": ("name",),
    "domain": ("domain",),
    "plan": ("plan",),
    "admin_email": ("adminEmail", "admin_email"),
    "created_at": ("createdAt", "created_at"),
    "users": ("users",),
}
"""Each field's accepted keys, the camelCase spelling first."""


@dataclass(frozen=True)
class Organisation:
    """One organisation to onboard, checked (build it with :func:`parse_organisation`)."""

    id: str
    """Your product's org id: the ``external_org_id`` it is linked by."""
    name: str
    """The company name (a smart-link hint, and the name of a company created for it)."""
    domain: str | None = None
    """The company's domain (a smart-link hint)."""
    plan: str | None = None
    """A tier code to apply, e.g. ``"pro"``."""
    admin_email: str | None = None
    """The admin's e-mail: the company's contact (primary when it has none yet)."""
    created_at: datetime | None = None
    """When the organisation was created in your product (kept for a company created now)."""
    users: tuple[ContactInput, ...] = ()
    """Contacts to upsert, matched by e-mail."""

    def onboard_input(self, label: str) -> OnboardInput:
        """The keyword arguments of ``onboard`` for this organisation."""
        hints: HintsDict = {"company_name": self.name}
        if self.domain is not None:
            hints["domain"] = self.domain
        if self.admin_email is not None:
            hints["emails"] = [self.admin_email]
        arguments: OnboardInput = {"external_org_id": self.id, "label": label, "hints": hints}
        if self.plan is not None:
            arguments["tier_code"] = self.plan
        if self.admin_email is not None:
            arguments["contact_email"] = self.admin_email
        if self.created_at is not None:
            arguments["created_at"] = self.created_at
        return arguments


def _lookup(data: Mapping[str, Any], name: str) -> tuple[str, Any]:
    """The key used for a field, and its value (``None`` when absent, empty or null)."""
    present = [key for key in FIELD_KEYS[name] if key in data]
    if len(present) > 1:
        raise InvalidInputError(present[0], f"give {' or '.join(present)}, not both")
    key = present[0] if present else FIELD_KEYS[name][0]
    value = data.get(key)
    if isinstance(value, str):
        value = value.strip() or None
    return key, value


def _text(key: str, value: Any, *, required: bool = False) -> str | None:
    """A string field as :func:`_lookup` gives it (``None``: not given), sendable as UTF-8."""
    if value is None:
        if required:
            raise InvalidInputError(key, "is required")
        return None
    return require_str(key, value)


def _email(key: str, value: Any, *, required: bool = False) -> str | None:
    text = _text(key, value, required=required)
    if text is not None and (not _EMAIL.match(text) or len(text) > 320):
        raise InvalidInputError(key, f"must be an e-mail address, got {show(text)}")
    return text


def _users(key: str, value: Any) -> tuple[ContactInput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInputError(key, f"must be a list, got {type(value).__name__}")
    users: list[ContactInput] = []
    for index, item in enumerate(value):
        where = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(where, f"must be an object, got {type(item).__name__}")
        fields: dict[str, str] = {}
        for name in ("email", "name", "role"):
            raw = item.get(name)
            if isinstance(raw, str):
                raw = raw.strip() or None
            checked = (
                _email(f"{where}.email", raw, required=True)
                if name == "email"
                else _text(f"{where}.{name}", raw)
            )
            if checked is not None:
                fields[name] = checked
        users.append(model_input(where, ContactInput, fields))
    return tuple(users)


def parse_organisation(data: Any) -> Organisation:
    """Check one row and build its :class:`Organisation`.

    Raises :class:`~chatarmin_os.InvalidInputError` naming the key as the row spells it
    (``adminEmail``, ``users[2].email``, ...) and the problem.
    """
    if not isinstance(data, Mapping):
        raise InvalidInputError("row", f"must be an object, got {type(data).__name__}")
    id_key, raw_id = _lookup(data, "id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    org_id = _text(id_key, raw_id, required=True)
    assert org_id is not None
    name_key, raw_name = _lookup(data, "name")
    name = _text(name_key, raw_name, required=True)
    assert name is not None
    domain_key, raw_domain = _lookup(data, "domain")
    domain = _text(domain_key, raw_domain)
    if domain is not None and any(char.isspace() for char in domain):
        raise InvalidInputError(domain_key, f"must be a domain name, got {show(domain)}")
    plan_key, raw_plan = _lookup(data, "plan")
    email_key, raw_email = _lookup(data, "admin_email")
    created_key, raw_created = _lookup(data, "created_at")
    users_key, raw_users = _lookup(data, "users")
    return Organisation(
        id=org_id,
        name=name,
        domain=domain,
        plan=_text(plan_key, raw_plan),
        admin_email=_email(email_key, raw_email),
        created_at=None if raw_created is None else timestamp(created_key, raw_created),
        users=_users(users_key, raw_users),
    )


def org_id_of(data: Any) -> str | None:
    """The org id of a row that may be invalid, for its report line."""
    if not isinstance(data, Mapping):
        return None
    value = data.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() or None if isinstance(value, str) else None
